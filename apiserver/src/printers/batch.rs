//! `batch/v1`: jobs and cron jobs.

use jiff::Timestamp;
use serde_json::Value;

use super::docs::*;
use super::view::View;
use super::{Column, Table, age, deleting, duration, format, name};

const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

pub static JOB: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Status", "Status of the job."),
        Column::string("Completions", JOB_STATUS_SUCCEEDED),
        Column::string("Duration", "Time required to complete the job."),
        Column::AGE,
        Column::string("Containers", CONTAINERS_DOC).wide(),
        Column::string("Images", IMAGES_DOC).wide(),
        Column::string("Selector", JOB_SPEC_SELECTOR).wide(),
    ],
    job_cells,
);

/// Whether the first condition of type `ty` is true.
fn has_condition(conditions: View<'_>, ty: &str) -> bool {
    conditions
        .items()
        .find(|c| c.at("type").str() == ty)
        .is_some_and(|c| c.at("status").str() == "True")
}

fn job_status(job: View<'_>) -> &'static str {
    let conditions = job.path(&["status", "conditions"]);
    if has_condition(conditions, "Complete") {
        "Complete"
    } else if has_condition(conditions, "Failed") {
        "Failed"
    } else if deleting(job) {
        "Terminating"
    } else if has_condition(conditions, "Suspended") {
        "Suspended"
    } else if has_condition(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

fn job_cells(job: View<'_>, now: Timestamp) -> Vec<Value> {
    let spec = job.at("spec");
    let status = job.at("status");
    let succeeded = status.at("succeeded").int();
    let completions = match spec.at("completions").opt_int() {
        Some(c) => format!("{succeeded}/{c}"),
        None => match spec.at("parallelism").int() {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let took = match (
        status.at("startTime").time(),
        status.at("completionTime").time(),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => duration::since(Some(start), now),
        (Some(start), Some(end)) => duration::human(end.duration_since(start)),
    };
    let (names, images) = format::containers(spec.path(&["template", "spec", "containers"]));
    vec![
        name(job),
        job_status(job).into(),
        completions.into(),
        took.into(),
        age(job, now),
        names.into(),
        images.into(),
        format::label_selector(spec.at("selector")).into(),
    ]
}

pub static CRON_JOB: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Schedule", CRON_JOB_SPEC_SCHEDULE),
        Column::string("Timezone", CRON_JOB_SPEC_TIME_ZONE),
        Column::boolean("Suspend", CRON_JOB_SPEC_SUSPEND),
        Column::integer("Active", CRON_JOB_STATUS_ACTIVE),
        Column::string("Last Schedule", CRON_JOB_STATUS_LAST_SCHEDULE_TIME),
        Column::AGE,
        Column::string("Containers", CONTAINERS_DOC).wide(),
        Column::string("Images", IMAGES_DOC).wide(),
        Column::string("Selector", JOB_SPEC_SELECTOR).wide(),
    ],
    |cj, now| {
        let spec = cj.at("spec");
        let status = cj.at("status");
        let last_schedule = match status.at("lastScheduleTime").time() {
            Some(t) => duration::since(Some(t), now),
            None => "<none>".into(),
        };
        let suspend = match spec.at("suspend").value() {
            None => "False".into(), // defaulted to false
            Some(_) => format::bool_ptr(spec.at("suspend")),
        };
        let job_spec = spec.path(&["jobTemplate", "spec"]);
        let (names, images) =
            format::containers(job_spec.path(&["template", "spec", "containers"]));
        vec![
            name(cj),
            spec.at("schedule").str().into(),
            spec.at("timeZone").opt_str().unwrap_or("<none>").into(),
            suspend.into(),
            (status.at("active").len() as i64).into(),
            last_schedule.into(),
            age(cj, now),
            names.into(),
            images.into(),
            format::label_selector(job_spec.at("selector")).into(),
        ]
    },
);
