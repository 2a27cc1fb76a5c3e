//! go-cmp's text tree (textNode) and its layout: a node is printed on one line when it
//! fits and holds no differences, otherwise as an indented, column-aligned block.

/// Lines longer than this are broken (go-cmp's maxColumnLength).
const MAX_COLUMN: usize = 80;

/// A diff mode byte as go-cmp keeps it: 0 (unknown), ' ', '-', '+'. Modes combine by
/// bitwise or when a record nests inside another.
pub type Mode = u8;
pub const UNKNOWN: Mode = 0;
pub const IDENTICAL: Mode = b' ';
pub const REMOVED: Mode = b'-';
pub const INSERTED: Mode = b'+';

#[derive(Debug, Clone)]
pub enum Text {
    Line(String),
    Wrap(Box<Wrap>),
    List(Vec<Record>),
}

#[derive(Debug, Clone)]
pub struct Wrap {
    pub prefix: String,
    pub value: Text,
    pub suffix: String,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub diff: Mode,
    pub key: String,
    pub value: Text,
    pub elide_comma: bool,
    pub comment: Option<Comment>,
}

/// A record's trailing comment: counts of elided records, or a fixed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comment {
    Stats(Stats),
    Text(String),
}

/// go-cmp's diffStats: what a run of records held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub name: &'static str,
    pub ignored: usize,
    pub identical: usize,
    pub removed: usize,
    pub inserted: usize,
    pub modified: usize,
}

impl Stats {
    pub fn named(name: &'static str) -> Self {
        Stats {
            name,
            ..Stats::default()
        }
    }

    pub fn is_zero(&self) -> bool {
        self.ignored + self.identical + self.removed + self.inserted + self.modified == 0
    }

    pub fn num_diff(&self) -> usize {
        self.removed + self.inserted + self.modified
    }

    pub fn append(mut self, o: &Stats) -> Stats {
        self.ignored += o.ignored;
        self.identical += o.identical;
        self.removed += o.removed;
        self.inserted += o.inserted;
        self.modified += o.modified;
        self
    }
}

impl std::fmt::Display for Stats {
    /// "2 identical fields", "1 removed and 3 inserted elements", "1 ignored, 2 identical,
    /// and 1 modified entries".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts = [
            ("ignored", self.ignored),
            ("identical", self.identical),
            ("removed", self.removed),
            ("inserted", self.inserted),
            ("modified", self.modified),
        ];
        let parts: Vec<String> = counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(l, n)| format!("{n} {l}"))
            .collect();
        let sum: usize = counts.iter().map(|(_, n)| n).sum();
        let mut name = self.name.to_string();
        if sum > 1 {
            name.push('s');
            if let Some(stem) = name.strip_suffix("ys") {
                name = format!("{stem}ies");
            }
        }
        match parts.len() {
            0 => Ok(()),
            1 | 2 => write!(f, "{} {name}", parts.join(" and ")),
            n => write!(f, "{}, and {} {name}", parts[..n - 1].join(", "), parts[n - 1]),
        }
    }
}

impl Comment {
    fn render(&self) -> String {
        match self {
            Comment::Stats(s) => s.to_string(),
            Comment::Text(t) => t.clone(),
        }
    }
}

pub fn line(s: impl Into<String>) -> Text {
    Text::Line(s.into())
}

pub fn wrap(prefix: impl Into<String>, value: Text, suffix: impl Into<String>) -> Text {
    Text::Wrap(Box::new(Wrap {
        prefix: prefix.into(),
        value,
        suffix: suffix.into(),
    }))
}

pub fn braces(list: Vec<Record>) -> Text {
    wrap("{", Text::List(list), "}")
}

pub fn record(key: impl Into<String>, value: Text) -> Record {
    Record {
        diff: UNKNOWN,
        key: key.into(),
        value,
        elide_comma: false,
        comment: None,
    }
}

pub const NIL: &str = "nil";
pub const ELLIPSIS: &str = "...";

/// textList.AppendEllipsis: one "..." at the end, its statistics merged.
pub fn append_ellipsis(list: &mut Vec<Record>, stats: Stats) {
    let has_stats = !stats.is_zero();
    match list.last_mut() {
        Some(last) if last.value.is_line(ELLIPSIS) => {
            if has_stats {
                last.comment = Some(match last.comment.take() {
                    Some(Comment::Stats(s)) => Comment::Stats(s.append(&stats)),
                    _ => Comment::Stats(stats),
                });
            }
        }
        _ => list.push(Record {
            diff: UNKNOWN,
            key: String::new(),
            value: line(ELLIPSIS),
            elide_comma: true,
            comment: has_stats.then_some(Comment::Stats(stats)),
        }),
    }
}

fn indent(b: &mut String, d: Mode, n: usize) {
    // go-cmp picks regular or non-breaking spaces at random per process; ironkube always
    // writes regular ones (go-cmp's deterministic choice).
    match d {
        UNKNOWN | IDENTICAL => b.push_str("  "),
        REMOVED => b.push_str("- "),
        INSERTED => b.push_str("+ "),
        _ => {}
    }
    for _ in 0..n {
        b.push('\t');
    }
}

impl Text {
    pub fn is_line(&self, s: &str) -> bool {
        matches!(self, Text::Line(l) if l == s)
    }

    /// textNode.Len: the length of the one-line form.
    pub fn len(&self) -> usize {
        match self {
            Text::Line(l) => l.len(),
            Text::Wrap(w) => w.prefix.len() + w.value.len() + w.suffix.len(),
            Text::List(list) => {
                let mut n = 0;
                for (i, r) in list.iter().enumerate() {
                    n += r.key.len();
                    if !r.key.is_empty() {
                        n += 2;
                    }
                    n += r.value.len();
                    if i + 1 < list.len() {
                        n += 2;
                    }
                }
                n
            }
        }
    }

    /// textNode.Equal: the same structure (record modes and comments included).
    pub fn equal(&self, other: &Text) -> bool {
        match (self, other) {
            (Text::Line(a), Text::Line(b)) => a == b,
            (Text::Wrap(a), Text::Wrap(b)) => {
                a.prefix == b.prefix && a.suffix == b.suffix && a.value.equal(&b.value)
            }
            (Text::List(a), Text::List(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(x, y)| {
                        x.diff == y.diff
                            && x.key == y.key
                            && x.value.equal(&y.value)
                            && x.comment == y.comment
                    })
            }
            _ => false,
        }
    }

    /// The one-line rendering of a line-only tree (textNode.String of a line).
    pub fn flat(&self) -> String {
        match self {
            Text::Line(l) => l.clone(),
            other => other.render(),
        }
    }

    /// textNode.String: the whole report.
    pub fn render(&self) -> String {
        match self {
            Text::Line(l) => l.clone(),
            Text::List(list) => braces(list.clone()).render(),
            Text::Wrap(_) => {
                let mut b = String::new();
                let compact = self.compact(&mut b, UNKNOWN);
                let mut out = String::new();
                indent(&mut out, UNKNOWN, 0);
                compact.expanded(&mut out, UNKNOWN, 0);
                out.push('\n');
                out
            }
        }
    }

    /// formatCompactTo: appends the one-line form to `b` and returns the node with every
    /// subtree that fits on one line replaced by that line.
    fn compact(&self, b: &mut String, d: Mode) -> Text {
        match self {
            Text::Line(l) => {
                b.push_str(l);
                self.clone()
            }
            Text::Wrap(w) => {
                let start = b.len();
                b.push_str(&w.prefix);
                let value = w.value.compact(b, d);
                b.push_str(&w.suffix);
                if matches!(value, Text::Line(_)) {
                    Text::Line(b[start..].to_string())
                } else {
                    wrap(w.prefix.clone(), value, w.suffix.clone())
                }
            }
            Text::List(list) => {
                let start = b.len();
                let mut out = list.clone();
                let mut multi = false;
                for (i, r) in list.iter().enumerate() {
                    if r.diff == INSERTED || r.diff == REMOVED {
                        multi = true;
                    }
                    b.push_str(&r.key);
                    if !r.key.is_empty() {
                        b.push_str(": ");
                    }
                    out[i].value = r.value.compact(b, d | r.diff);
                    if !matches!(out[i].value, Text::Line(_)) {
                        multi = true;
                    }
                    if r.comment.is_some() {
                        multi = true;
                    }
                    if i + 1 < list.len() {
                        b.push_str(", ");
                    }
                }
                if (d == INSERTED || d == REMOVED) && b.len() - start > MAX_COLUMN {
                    multi = true;
                }
                if multi {
                    Text::List(out)
                } else {
                    Text::Line(b[start..].to_string())
                }
            }
        }
    }

    /// formatExpandedTo.
    fn expanded(&self, b: &mut String, d: Mode, n: usize) {
        match self {
            Text::Line(l) => b.push_str(l),
            Text::Wrap(w) => {
                b.push_str(&w.prefix);
                w.value.expanded(b, d, n);
                b.push_str(&w.suffix);
            }
            Text::List(list) => expand_list(list, b, d, n),
        }
    }
}

fn line_len(t: &Text) -> usize {
    match t {
        Text::Line(l) => l.chars().count(),
        _ => 0,
    }
}

/// textList.alignLens: padding that aligns a column over each run of records not skipped.
fn align(list: &[Record], skip: impl Fn(&Record) -> bool, len: impl Fn(&Record) -> usize) -> Vec<usize> {
    let mut lens = vec![0; list.len()];
    let (mut start, mut end, mut max) = (0, 0, 0);
    for (i, r) in list.iter().enumerate() {
        if skip(r) {
            for j in start..end.min(list.len()) {
                lens[j] = max - len(&list[j]);
            }
            start = i + 1;
            end = i + 1;
            max = 0;
        } else {
            max = max.max(len(r));
            end = i + 1;
        }
    }
    for j in start..end.min(list.len()) {
        lens[j] = max - len(&list[j]);
    }
    lens
}

fn expand_list(list: &[Record], b: &mut String, d: Mode, n: usize) {
    let is_line = |r: &Record| matches!(r.value, Text::Line(_));
    let key_pad = align(
        list,
        |r| r.key.is_empty() || !is_line(r),
        |r| r.key.chars().count(),
    );
    let value_pad = align(
        list,
        |r| !is_line(r) || r.value.is_line(ELLIPSIS) || r.comment.is_none(),
        |r| line_len(&r.value),
    );

    // A list of plain one-line values is packed several to a line.
    let simple = !list.is_empty()
        && list
            .iter()
            .all(|r| r.diff == UNKNOWN && r.key.is_empty() && is_line(r) && r.comment.is_none());
    if simple {
        let mut batch = String::new();
        let emit = |b: &mut String, batch: &mut String| {
            if !batch.is_empty() {
                b.push('\n');
                indent(b, d, n + 1);
                b.push_str(batch.trim_end_matches(' '));
                batch.clear();
            }
        };
        for r in list {
            let Text::Line(l) = &r.value else { continue };
            if batch.len() + l.len() + 2 > MAX_COLUMN {
                emit(b, &mut batch);
            }
            batch.push_str(l);
            batch.push_str(", ");
        }
        emit(b, &mut batch);
        b.push('\n');
        indent(b, d, n);
        return;
    }

    for (i, r) in list.iter().enumerate() {
        b.push('\n');
        indent(b, d | r.diff, n + 1);
        if !r.key.is_empty() {
            b.push_str(&r.key);
            b.push_str(": ");
        }
        b.extend(std::iter::repeat_n(' ', key_pad[i]));
        r.value.expanded(b, d | r.diff, n + 1);
        if !r.elide_comma {
            b.push(',');
        }
        b.extend(std::iter::repeat_n(' ', value_pad[i]));
        if let Some(c) = &r.comment {
            b.push_str(" // ");
            b.push_str(&c.render());
        }
    }
    b.push('\n');
    indent(b, d, n);
}
