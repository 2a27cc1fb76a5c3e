//! A probe's or hook's port: a number, or the name of one of the container's ports (upstream's
//! `probe.ResolveContainerPort`, which HTTP hooks use too).

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The port `port` means for `container`, with upstream's error text when there is none.
pub fn resolve(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            let named = container.ports.iter().flatten().find(|p| p.name.as_deref() == Some(name.as_str()));
            match named {
                Some(p) => i64::from(p.container_port),
                // A number written as a string.
                None => {
                    name.parse::<i64>().map_err(|_| format!("strconv.Atoi: parsing {}: invalid syntax", super::messages::go_quote(name)))?
                }
            }
        }
    };
    match u16::try_from(number) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("invalid port number: {number}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    #[test]
    fn ports_resolve_by_number_or_name() {
        let container = Container {
            name: "c".into(),
            ports: Some(vec![
                ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() },
                ContainerPort { name: Some("zero".into()), container_port: 0, ..Default::default() },
            ]),
            ..Default::default()
        };
        let cases: Vec<(IntOrString, Result<u16, String>)> = vec![
            (IntOrString::Int(80), Ok(80)),
            (IntOrString::String("http".into()), Ok(8080)),
            (IntOrString::String("9090".into()), Ok(9090)),
            (IntOrString::String("metrics".into()), Err(r#"strconv.Atoi: parsing "metrics": invalid syntax"#.into())),
            (IntOrString::Int(0), Err("invalid port number: 0".into())),
            (IntOrString::Int(70000), Err("invalid port number: 70000".into())),
            (IntOrString::String("zero".into()), Err("invalid port number: 0".into())),
        ];
        for (port, want) in cases {
            assert_eq!(resolve(&port, &container), want, "{port:?}");
        }
    }
}
