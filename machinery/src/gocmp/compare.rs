//! go-cmp's comparison walk, recording the tree its default reporter builds (valueNode):
//! for every visited node, the counts of equal and differing leaves, the depth, and the
//! children (struct fields, slice elements by edit script, map entries by sorted key, the
//! value behind a pointer).

use super::types::{go_type, GoKind};
use super::value::{key_order, GoValue};

/// A record key: a struct field's name, a map key, or none (slice elements).
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    None,
    Field(&'static str),
    Map(&'a GoValue),
}

#[derive(Debug)]
pub struct Node<'a> {
    pub ty: usize,
    /// The compared values; `None` when the value is missing on that side (an element or
    /// entry only the other side has).
    pub x: Option<&'a GoValue>,
    pub y: Option<&'a GoValue>,
    pub num_same: usize,
    pub num_diff: usize,
    pub num_compared: usize,
    pub num_children: usize,
    pub max_depth: usize,
    pub records: Vec<(Key<'a>, Node<'a>)>,
    /// The pointed-to values of a pointer.
    pub value: Option<Box<Node<'a>>>,
}

impl<'a> Node<'a> {
    fn new(ty: usize, x: Option<&'a GoValue>, y: Option<&'a GoValue>) -> Self {
        Node {
            ty,
            x,
            y,
            num_same: 0,
            num_diff: 0,
            num_compared: 0,
            num_children: 0,
            max_depth: 0,
            records: Vec::new(),
            value: None,
        }
    }

    fn report(&mut self, equal: bool, by_method: bool) {
        if equal {
            self.num_same += 1;
        } else {
            self.num_diff += 1;
        }
        if by_method {
            self.num_compared += 1;
        }
    }

    fn adopt(&mut self, child: &Node<'a>) {
        self.num_same += child.num_same;
        self.num_diff += child.num_diff;
        self.num_compared += child.num_compared;
        self.num_children += child.num_children + 1;
        self.max_depth = self.max_depth.max(child.max_depth + 1);
    }

    fn push(&mut self, key: Key<'a>, child: Node<'a>) {
        self.adopt(&child);
        self.records.push((key, child));
    }
}

/// Compares `x` and `y` of type `ty` as `cmp.Equal` does without options.
pub fn compare<'a>(ty: usize, x: Option<&'a GoValue>, y: Option<&'a GoValue>) -> Node<'a> {
    let t = go_type(ty);
    let mut node = Node::new(ty, x, y);
    let (Some(vx), Some(vy)) = (x, y) else {
        // The validator option: a value missing on one side is a difference.
        node.report(x.is_some() == y.is_some(), false);
        return node;
    };
    if t.equal_method {
        let eq = match (vx, vy) {
            (GoValue::Quantity(a), GoValue::Quantity(b)) => {
                let zero = crate::validation::quantity::Quantity::ZERO;
                a.amount.unwrap_or(zero).cmp(&b.amount.unwrap_or(zero)).is_eq()
            }
            _ => vx == vy,
        };
        node.report(eq, true);
        return node;
    }
    match (t.kind, vx, vy) {
        (GoKind::Struct, GoValue::Struct(fx), GoValue::Struct(fy)) => {
            for ((f, a), b) in t.fields.iter().zip(fx).zip(fy) {
                let child = compare(f.ty, Some(a), Some(b));
                node.push(Key::Field(f.name), child);
            }
        }
        (GoKind::Slice | GoKind::Array, GoValue::List(lx), GoValue::List(ly)) => {
            match (lx, ly) {
                (Some(ex), Some(ey)) => {
                    let edits = difference(ex.len(), ey.len(), |i, j| {
                        let n = compare(t.elem, Some(&ex[i]), Some(&ey[j]));
                        (n.num_same, n.num_diff)
                    });
                    let (mut i, mut j) = (0, 0);
                    for e in edits {
                        let child = match e {
                            Edit::UniqueX => {
                                i += 1;
                                compare(t.elem, Some(&ex[i - 1]), None)
                            }
                            Edit::UniqueY => {
                                j += 1;
                                compare(t.elem, None, Some(&ey[j - 1]))
                            }
                            Edit::Identity | Edit::Modified => {
                                i += 1;
                                j += 1;
                                compare(t.elem, Some(&ex[i - 1]), Some(&ey[j - 1]))
                            }
                        };
                        node.push(Key::None, child);
                    }
                }
                (a, b) => node.report(a.is_none() && b.is_none(), false),
            }
        }
        (GoKind::Map, GoValue::Map(mx), GoValue::Map(my)) => match (mx, my) {
            (Some(ex), Some(ey)) => {
                let mut keys: Vec<&GoValue> = ex.iter().chain(ey.iter()).map(|(k, _)| k).collect();
                keys.sort_by(|a, b| key_order(a, b));
                keys.dedup_by(|a, b| key_order(a, b).is_eq());
                for k in keys {
                    let find = |m: &'a Vec<(GoValue, GoValue)>| {
                        m.iter().find(|(mk, _)| key_order(mk, k).is_eq()).map(|(_, v)| v)
                    };
                    let child = compare(t.elem, find(ex), find(ey));
                    node.push(Key::Map(k), child);
                }
            }
            (a, b) => node.report(a.is_none() && b.is_none(), false),
        },
        (GoKind::Ptr, GoValue::Ptr(px), GoValue::Ptr(py)) => match (px, py) {
            (Some(a), Some(b)) => {
                let child = compare(t.elem, Some(a), Some(b));
                node.adopt(&child);
                node.value = Some(Box::new(child));
            }
            (a, b) => node.report(a.is_none() && b.is_none(), false),
        },
        _ => node.report(vx == vy, false),
    }
    node
}

/// One step of an edit script turning the x list into the y list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Identity,
    UniqueX,
    UniqueY,
    Modified,
}

/// go-cmp's edit script (internal/diff.Difference) in its deterministic form, which
/// starts with the forward search: a greedy search from both ends that alternates
/// between them, giving up after O(nx+ny) failed matches, then connects the two paths
/// pairing what is left (similar pairs as modified). `eq(i, j)` counts equal and
/// differing leaves of x[i] against y[j].
pub fn difference(nx: usize, ny: usize, eq: impl Fn(usize, usize) -> (usize, usize)) -> Vec<Edit> {
    let equal = |i: usize, j: usize| eq(i, j).1 == 0;
    let similar = |r: (usize, usize)| r.0 + 1 >= r.1;
    let (nx, ny) = (nx as i64, ny as i64);
    // Leading points of the forward path (from the start) and the reverse path (from the end).
    let (mut fx, mut fy) = (0i64, 0i64);
    let (mut rx, mut ry) = (nx, ny);
    let mut fwd: Vec<Edit> = Vec::new();
    let mut rev: Vec<Edit> = Vec::new();
    let (mut ffx, mut ffy) = (0i64, 0i64); // forward frontier
    let (mut rfx, mut rfy) = (nx, ny); // reverse frontier
    let mut budget = 4 * (nx + ny);
    // 0, -1, 1, -2, 2, ...
    let zigzag = |i: i64| {
        let v = if i & 1 != 0 { !i } else { i };
        v >> 1
    };

    // Connects the forward path from (fx, fy) to (dx, dy).
    let connect_fwd = |fwd: &mut Vec<Edit>, fx: &mut i64, fy: &mut i64, dx: i64, dy: i64| {
        while dx > *fx && dy > *fy {
            let r = eq(*fx as usize, *fy as usize);
            let e = if r.1 == 0 {
                Edit::Identity
            } else if similar(r) {
                Edit::Modified
            } else if dx - *fx >= dy - *fy {
                Edit::UniqueX
            } else {
                Edit::UniqueY
            };
            step(fwd, fx, fy, e, 1);
        }
        while dx > *fx {
            step(fwd, fx, fy, Edit::UniqueX, 1);
        }
        while dy > *fy {
            step(fwd, fx, fy, Edit::UniqueY, 1);
        }
    };
    let connect_rev = |rev: &mut Vec<Edit>, rx: &mut i64, ry: &mut i64, dx: i64, dy: i64| {
        while *rx > dx && *ry > dy {
            let r = eq((*rx - 1) as usize, (*ry - 1) as usize);
            let e = if r.1 == 0 {
                Edit::Identity
            } else if similar(r) {
                Edit::Modified
            } else if *ry - dy >= *rx - dx {
                Edit::UniqueY
            } else {
                Edit::UniqueX
            };
            step(rev, rx, ry, e, -1);
        }
        while *rx > dx {
            step(rev, rx, ry, Edit::UniqueX, -1);
        }
        while *ry > dy {
            step(rev, rx, ry, Edit::UniqueY, -1);
        }
    };

    let mut forward = true;
    loop {
        if ffx >= rfx || ffy >= rfy || budget == 0 {
            break;
        }
        if forward {
            let (mut stop1, mut stop2, mut i) = (false, false, 0i64);
            while !(stop1 && stop2) && budget > 0 {
                let z = zigzag(i);
                let (px, py) = (ffx + z, ffy - z);
                if px >= rx || py < fy {
                    stop1 = true;
                } else if py >= ry || px < fx {
                    stop2 = true;
                } else if equal(px as usize, py as usize) {
                    connect_fwd(&mut fwd, &mut fx, &mut fy, px, py);
                    step(&mut fwd, &mut fx, &mut fy, Edit::Identity, 1);
                    while fx < rx && fy < ry && equal(fx as usize, fy as usize) {
                        step(&mut fwd, &mut fx, &mut fy, Edit::Identity, 1);
                    }
                    ffx = fx;
                    ffy = fy;
                    stop1 = true;
                    stop2 = true;
                } else {
                    budget -= 1;
                }
                i += 1;
            }
            if rx - ffx >= ry - ffy {
                ffx += 1;
            } else {
                ffy += 1;
            }
        } else {
            let (mut stop1, mut stop2, mut i) = (false, false, 0i64);
            while !(stop1 && stop2) && budget > 0 {
                let z = zigzag(i);
                let (px, py) = (rfx - z, rfy + z);
                if fx >= px || ry < py {
                    stop1 = true;
                } else if fy >= py || rx < px {
                    stop2 = true;
                } else if equal((px - 1) as usize, (py - 1) as usize) {
                    connect_rev(&mut rev, &mut rx, &mut ry, px, py);
                    step(&mut rev, &mut rx, &mut ry, Edit::Identity, -1);
                    while fx < rx && fy < ry && equal((rx - 1) as usize, (ry - 1) as usize) {
                        step(&mut rev, &mut rx, &mut ry, Edit::Identity, -1);
                    }
                    rfx = rx;
                    rfy = ry;
                    stop1 = true;
                    stop2 = true;
                } else {
                    budget -= 1;
                }
                i += 1;
            }
            if rfx - fx >= rfy - fy {
                rfx -= 1;
            } else {
                rfy -= 1;
            }
        }
        forward = !forward;
    }
    connect_fwd(&mut fwd, &mut fx, &mut fy, rx, ry);
    fwd.extend(rev.into_iter().rev());
    fwd
}

fn step(path: &mut Vec<Edit>, x: &mut i64, y: &mut i64, e: Edit, dir: i64) {
    path.push(e);
    match e {
        Edit::Identity | Edit::Modified => {
            *x += dir;
            *y += dir;
        }
        Edit::UniqueX => *x += dir,
        Edit::UniqueY => *y += dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(x: &str, y: &str) -> String {
        let (xs, ys): (Vec<char>, Vec<char>) = (x.chars().collect(), y.chars().collect());
        difference(xs.len(), ys.len(), |i, j| {
            if xs[i] == ys[j] {
                (1, 0)
            } else {
                (0, 2)
            }
        })
        .iter()
        .map(|e| match e {
            Edit::Identity => '.',
            Edit::UniqueX => 'X',
            Edit::UniqueY => 'Y',
            Edit::Modified => 'M',
        })
        .collect()
    }

    #[test]
    fn edit_scripts() {
        // Cases from go-cmp's own table (deterministic mode), checked by hand.
        assert_eq!(script("", ""), "");
        assert_eq!(script("a", "a"), ".");
        assert_eq!(script("abc", "abc"), "...");
        assert_eq!(script("a", ""), "X");
        assert_eq!(script("", "a"), "Y");
        assert_eq!(script("abc", "axc"), ".XY.");
        assert_eq!(script("abc", "abcd"), "...Y");
        assert_eq!(script("abcd", "acd"), ".X..");
    }
}
