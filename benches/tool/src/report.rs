//! The report: `report.md` (tables, the targets checked, DriverBench scores) and SVG charts
//! (throughput, p99 latency and peak memory against concurrency, one line per contender,
//! min–max bars over the runs), drawn with plotters.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::Allocator;
use crate::matrix::{PointRuns, Results};
use crate::point::Outcome;
use crate::workload::{Contender, Workload};

pub fn load(dir: &Path) -> Result<Results, String> {
    let path = dir.join("results.json");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The figures of one point over its successful runs.
pub struct Summary {
    pub ops: f64,
    pub ops_min: f64,
    pub ops_max: f64,
    pub p50: f64,
    pub p99: f64,
    pub p99_min: f64,
    pub p99_max: f64,
    pub p999: f64,
    pub peak_mib: f64,
    pub peak_max_mib: f64,
    /// (peak − base) / tasks, KiB.
    pub per_task_kib: f64,
    pub connections: f64,
    pub ok_runs: usize,
}

fn summarize(p: &PointRuns) -> Option<Summary> {
    let ok: Vec<&Outcome> = p.runs.iter().filter(|o| o.error.is_none()).collect();
    if ok.is_empty() {
        return None;
    }
    let f = |g: &dyn Fn(&Outcome) -> f64| ok.iter().map(|o| g(o)).collect::<Vec<f64>>();
    let ops = f(&|o| o.ops_per_sec());
    let p99 = f(&|o| o.p99_us);
    let peak = f(&|o| o.peak_rss_kib as f64 / 1024.0);
    Some(Summary {
        ops: median(ops.clone()),
        ops_min: ops.iter().copied().fold(f64::INFINITY, f64::min),
        ops_max: ops.iter().copied().fold(0.0, f64::max),
        p50: median(f(&|o| o.p50_us)),
        p99: median(p99.clone()),
        p99_min: p99.iter().copied().fold(f64::INFINITY, f64::min),
        p99_max: p99.iter().copied().fold(0.0, f64::max),
        p999: median(f(&|o| o.p999_us)),
        peak_mib: median(peak.clone()),
        peak_max_mib: peak.iter().copied().fold(0.0, f64::max),
        per_task_kib: median(f(&|o| {
            o.peak_rss_kib.saturating_sub(o.base_rss_kib) as f64 / p.tasks as f64
        })),
        connections: median(f(&|o| o.connections as f64)),
        ok_runs: ok.len(),
    })
}

fn find(r: &Results, a: Allocator, w: Workload, c: Contender, tasks: usize) -> Option<&PointRuns> {
    r.points.iter().find(|p| {
        p.allocator == a.name()
            && p.workload == w.name()
            && p.contender == c.name()
            && p.tasks == tasks
    })
}

fn ops(r: &Results, a: Allocator, w: Workload, c: Contender, tasks: usize) -> Option<f64> {
    find(r, a, w, c, tasks).and_then(summarize).map(|s| s.ops)
}

/// The allocators a report holds, in the tool's order (one for reports made before there
/// were two).
fn allocators(r: &Results) -> Vec<Allocator> {
    Allocator::ALL
        .into_iter()
        .filter(|a| r.points.iter().any(|p| p.allocator == a.name()))
        .collect()
}

/// Why a point has no figure: the errors of its runs (distinct), or "not run".
fn why_missing(p: &PointRuns) -> String {
    let mut errors: Vec<&str> = p.runs.iter().filter_map(|o| o.error.as_deref()).collect();
    errors.dedup();
    if errors.is_empty() {
        "not run".into()
    } else {
        errors.join("; ")
    }
}

fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// One checked target.
pub struct Check {
    pub what: String,
    pub ratio: Option<f64>,
    pub goal: f64,
    pub detail: String,
    /// This driver's point the check is about, to profile when the target is missed.
    pub point: Option<(Allocator, Workload, Contender, usize)>,
    /// Which issue set the target.
    pub issue: u32,
}

impl Check {
    pub fn met(&self) -> Option<bool> {
        self.ratio.map(|r| r >= self.goal)
    }
}

/// The issues' targets, checked against the medians of this run: issue 20's (both
/// allocators, the coroutine core against the threaded core and the official driver) and
/// issue 8's (the system allocator).
pub fn targets(r: &Results) -> Vec<Check> {
    use Allocator::*;
    use Contender::*;
    use Workload::*;
    let mut checks = Vec::new();
    let ratio = |issue: u32,
                 what: String,
                 goal: f64,
                 a: Allocator,
                 (w, x, tx): (Workload, Contender, usize),
                 (y, ty): (Contender, usize)| {
        let (vx, vy) = (ops(r, a, w, x, tx), ops(r, a, w, y, ty));
        let ratio = vx.zip(vy).map(|(vx, vy)| vx / vy);
        let mut detail = match (vx, vy) {
            (Some(vx), Some(vy)) => format!("{} vs {} ops/s", thousands(vx), thousands(vy)),
            _ => "a point is missing".into(),
        };
        // The physical limit at that level, in the same units as the goal.
        if y != PingPong
            && let (Some(limit), Some(vy)) = (ops(r, a, w, PingPong, ty), vy)
        {
            let _ = write!(
                detail,
                "; the raw ping-pong is {:.2}× the {}",
                limit / vy,
                y.name()
            );
            if limit / vy < goal {
                detail.push_str(": the goal is above the physical limit");
            }
        }
        Check {
            what: format!("{what} ({})", a.name()),
            ratio,
            goal,
            detail,
            point: Some((a, w, x, tx)),
            issue,
        }
    };
    let has = |a: Allocator| allocators(r).contains(&a);
    // Issue 20: the coroutine core, safe and fast by default.
    if has(Glibc) {
        for w in [FindOne, FindMany] {
            for t in [16, 256, 1024] {
                checks.push(ratio(
                    20,
                    format!("{}, {t} tasks: coroutine core vs threaded core", w.name()),
                    0.9,
                    Glibc,
                    (w, Coroutine, t),
                    (Threaded, t),
                ));
            }
        }
    }
    if has(Mimalloc) {
        for w in [FindOne, FindMany] {
            for t in [256, 1024] {
                checks.push(ratio(
                    20,
                    format!("{}, {t} tasks: coroutine core vs threaded core", w.name()),
                    1.3,
                    Mimalloc,
                    (w, Coroutine, t),
                    (Threaded, t),
                ));
            }
        }
        for t in [16, 256, 1024] {
            checks.push(ratio(
                20,
                format!("find_one, {t} tasks: coroutine core vs official async"),
                2.0,
                Mimalloc,
                (FindOne, Coroutine, t),
                (OfficialAsync, t),
            ));
        }
        checks.push(ratio(
            20,
            "find_one, 1 task: coroutine core vs threaded core".into(),
            0.95,
            Mimalloc,
            (FindOne, Coroutine, 1),
            (Threaded, 1),
        ));
    }
    // The memory target is about the driver's cost per task: find_one and insert_one,
    // whose in-flight data is one small document. A find-many task holds a batch of 101
    // tweets (~160 KB) and an insert_many task 100 documents, whatever the driver.
    for a in allocators(r) {
        for w in [FindOne, InsertOne] {
            if let Some(s) = find(r, a, w, Coroutine, 10_000).and_then(summarize) {
                let mb = s.peak_max_mib * 1024.0 * 1024.0 / 1e6;
                checks.push(Check {
                    what: format!(
                        "{}, 10,000 tasks: coroutine core completes, peak RSS under 150 MB ({})",
                        w.name(),
                        a.name()
                    ),
                    ratio: Some(150.0 / mb),
                    goal: 1.0,
                    detail: format!("highest peak of {} runs: {mb:.1} MB", s.ok_runs),
                    // A CPU profile says nothing about memory: see notes/coroutine-costs.md.
                    point: None,
                    issue: 20,
                });
            }
        }
    }
    // Issue 8's, with the system allocator as they were set.
    if has(Glibc) {
        checks.push(ratio(
            8,
            "find_one, 1 task: coroutine core vs official async".into(),
            1.3,
            Glibc,
            (FindOne, Coroutine, 1),
            (OfficialAsync, 1),
        ));
        for t in [16, 256, 1024] {
            checks.push(ratio(
                8,
                format!("find_one, {t} tasks: coroutine core vs official async"),
                1.5,
                Glibc,
                (FindOne, Coroutine, t),
                (OfficialAsync, t),
            ));
        }
        checks.push(ratio(
            8,
            "find_one raw reply, 16 tasks: coroutine core vs raw ping-pong".into(),
            0.5,
            Glibc,
            (FindOne, CoroutineRaw, 16),
            (PingPong, 16),
        ));
        for t in [16, 256, 1024] {
            checks.push(ratio(
                8,
                format!("insert_one, {t} tasks: coroutine core vs official async"),
                1.3,
                Glibc,
                (InsertOne, Coroutine, t),
                (OfficialAsync, t),
            ));
        }
        for w in Workload::ALL {
            checks.push(ratio(
                8,
                format!(
                    "{}, 10,000 tasks: coroutine core vs threaded core",
                    w.name()
                ),
                1.5,
                Glibc,
                (w, Coroutine, 10_000),
                (Threaded, 10_000),
            ));
        }
    }
    for t in &r.driverbench {
        let score = |c: &str| {
            t.scores
                .iter()
                .find(|s| s.contender == c && s.error.is_none())
                .map(|s| s.mb_per_s(t.bytes))
        };
        for core in ["coroutine", "threaded"] {
            let (x, y) = (score(core), score("official-async"));
            checks.push(Check {
                what: format!(
                    "DriverBench {}: {core} core vs official ({})",
                    t.task, t.allocator
                ),
                ratio: x.zip(y).map(|(x, y)| x / y),
                goal: 1.0,
                detail: match (x, y) {
                    (Some(x), Some(y)) => format!("{x:.2} vs {y:.2} MB/s"),
                    _ => "a score is missing".into(),
                },
                point: None,
                issue: 8,
            });
        }
    }
    checks
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(120, 120, 120), // ping-pong: grey
    RGBColor(214, 39, 40),   // official async: red
    RGBColor(255, 127, 14),  // official sync: orange
    RGBColor(31, 119, 180),  // coroutine: blue
    RGBColor(44, 160, 44),   // threaded: green
    RGBColor(148, 103, 189), // async coroutine: purple
    RGBColor(23, 190, 207),  // async threaded: cyan
    RGBColor(140, 86, 75),   // coroutine raw: brown
];

/// One chart: `value` of every contender against concurrency (log-log), with min–max bars.
fn chart(
    path: &Path,
    title: &str,
    y_desc: &str,
    r: &Results,
    (a, w): (Allocator, Workload),
    value: &dyn Fn(&Summary) -> (f64, f64, f64),
) -> Result<(), String> {
    let mut series = Vec::new();
    for (ci, c) in Contender::ALL.iter().enumerate() {
        if !r.contenders.iter().any(|n| n == c.name()) || !c.runs(w) {
            continue;
        }
        let pts: Vec<(f64, f64, f64, f64)> = r
            .levels
            .iter()
            .filter_map(|&t| {
                let s = find(r, a, w, *c, t).and_then(summarize)?;
                let (mid, lo, hi) = value(&s);
                (mid > 0.0).then_some((t as f64, mid, lo.max(mid * 1e-3), hi))
            })
            .collect();
        series.push((ci, c, pts));
    }
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.2.iter().flat_map(|p| [p.2, p.3]))
        .filter(|v| *v > 0.0)
        .collect();
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if all.is_empty() {
        (1.0, 10.0)
    } else {
        (lo / 1.5, hi * 1.5)
    };
    let x_hi = r.levels.iter().copied().max().unwrap_or(10) as f64 * 1.6;
    let root = SVGBackend::new(path, (980, 520)).into_drawing_area();
    let e = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|x| e(&x))?;
    // The chart on the left, its legend in a column of its own on the right: never over data.
    let (left, right) = root.split_horizontally(660);
    let key_points: Vec<f64> = r.levels.iter().map(|&t| t as f64).collect();
    let mut c = ChartBuilder::on(&left)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0.7f64..x_hi).log_scale().with_key_points(key_points),
            (lo..hi).log_scale(),
        )
        .map_err(|x| e(&x))?;
    c.configure_mesh()
        .x_desc("concurrent tasks")
        .y_desc(y_desc)
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if *y >= 1000.0 {
                format!("{:.0}k", y / 1000.0)
            } else {
                format!("{y:.1}")
            }
        })
        .draw()
        .map_err(|x| e(&x))?;
    let mut legend_y = 50;
    for (ci, contender, pts) in series {
        let color = PALETTE[ci % PALETTE.len()];
        c.draw_series(LineSeries::new(
            pts.iter().map(|p| (p.0, p.1)),
            color.stroke_width(2),
        ))
        .map_err(|x| e(&x))?;
        c.draw_series(
            pts.iter()
                .map(|p| ErrorBar::new_vertical(p.0, p.2, p.1, p.3, color.filled(), 6)),
        )
        .map_err(|x| e(&x))?;
        right
            .draw(&PathElement::new(
                vec![(5, legend_y), (30, legend_y)],
                color.stroke_width(3),
            ))
            .map_err(|x| e(&x))?;
        let mut label = contender.label().to_string();
        if pts.len() < r.levels.len() {
            label.push_str(&format!(" ({} of {} points)", pts.len(), r.levels.len()));
        }
        right
            .draw(&Text::new(
                label,
                (36, legend_y - 7),
                ("sans-serif", 12).into_font(),
            ))
            .map_err(|x| e(&x))?;
        legend_y += 24;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// Writes `report.md` and the charts into `dir`.
pub fn write(dir: &Path, r: &Results) -> Result<(), String> {
    let mut md = String::new();
    let alloc_names: Vec<&str> = allocators(r).iter().map(|a| a.name()).collect();
    let _ = writeln!(md, "# may_mongo benchmark report\n");
    let _ = writeln!(
        md,
        "- Date: {}\n- Machine: {}\n- Server: {}\n- Allocators: {} (each point runs in a \
         process of the tool's binary built with that allocator)\n- Command: `may_mongo_bench {}`\n- Each point: a \
         {} s window after a warm-up (every task has finished one operation, or 30 s have \
         passed), {} interleaved run(s) (one at 10,000 tasks), each in a process of its own; the \
         median is quoted, min–max in brackets. The whole run took {:.1} min.\n",
        r.date,
        r.machine,
        r.server,
        if alloc_names.is_empty() {
            r.allocator.clone()
        } else {
            alloc_names.join(" and ")
        },
        r.command,
        r.window_s,
        r.runs,
        r.duration_s / 60.0
    );
    let _ = writeln!(
        md,
        "Columns: operations per second; latency quantiles of every operation completed in the \
         window; peak RSS of the contender's process (`VmHWM`); memory per task = (peak − RSS \
         before the client was built) / tasks; connections = established TCP connections to the \
         server at the end of the window, counted from `/proc` (monitoring connections \
         included). Latency records (16 bytes per operation) are part of every peak.\n"
    );

    if !r.points.is_empty() {
        let checks = targets(r);
        for (issue, title) in [
            (
                20,
                "Targets: the coroutine core with each allocator",
            ),
            (8, "Targets: the system allocator"),
        ] {
            let _ = writeln!(md, "## {title}\n");
            let _ = writeln!(
                md,
                "| target | ratio (goal) | figures | verdict |\n|---|---|---|---|"
            );
            for c in checks.iter().filter(|c| c.issue == issue) {
                let verdict = match c.met() {
                    Some(true) => "met".to_string(),
                    Some(false) => format!(
                        "**missed** by {:.0}%",
                        (1.0 - c.ratio.unwrap() / c.goal) * 100.0
                    ),
                    None => "not measured".into(),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} (≥ {}) | {} | {verdict} |",
                    c.what,
                    c.ratio.map_or("–".into(), |x| format!("{x:.2}×")),
                    c.goal,
                    c.detail
                );
            }
            md.push('\n');
        }
    }

    for w in Workload::ALL {
        if !r.workloads.iter().any(|n| n == w.name()) {
            continue;
        }
        let _ = writeln!(md, "## {}\n\n{}.\n", w.name(), w.describe());
        for a in allocators(r) {
            for (file, title, desc) in [
                ("throughput", "throughput", "ops/s"),
                ("p99", "p99 latency", "p99 latency (µs)"),
                ("memory", "peak RSS", "peak RSS (MiB)"),
            ] {
                let name = format!("{}-{}-{file}.svg", w.name(), a.name());
                let value: &dyn Fn(&Summary) -> (f64, f64, f64) = match file {
                    "throughput" => &|s| (s.ops, s.ops_min, s.ops_max),
                    "p99" => &|s| (s.p99, s.p99_min, s.p99_max),
                    _ => &|s| (s.peak_mib, s.peak_mib, s.peak_max_mib),
                };
                chart(
                    &dir.join(&name),
                    &format!("{}: {title}, {}", w.name(), a.name()),
                    desc,
                    r,
                    (a, w),
                    value,
                )?;
                let _ = writeln!(md, "![{} {title}, {}]({name})\n", w.name(), a.name());
            }
        }
        let _ = writeln!(
            md,
            "| contender | allocator | tasks | ops/s | p50 | p99 | p99.9 | peak RSS | per task | connections |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        let mut missing = Vec::new();
        for &tasks in &r.levels {
            for c in Contender::ALL {
                for a in allocators(r) {
                    let Some(p) = find(r, a, w, c, tasks) else {
                        continue;
                    };
                    match summarize(p) {
                        Some(s) => {
                            let _ = writeln!(
                                md,
                                "| {} | {} | {tasks} | {} ({}–{}) | {} | {} ({}–{}) | {} | {:.1} MiB | {:.1} KiB | {:.0} |",
                                c.label(),
                                a.name(),
                                thousands(s.ops),
                                thousands(s.ops_min),
                                thousands(s.ops_max),
                                us(s.p50),
                                us(s.p99),
                                us(s.p99_min),
                                us(s.p99_max),
                                us(s.p999),
                                s.peak_mib,
                                s.per_task_kib,
                                s.connections
                            );
                            if s.ok_runs < p.runs.len() {
                                missing.push(format!(
                                    "{} ({}) at {tasks} tasks: {} of {} runs failed: {}",
                                    c.label(),
                                    a.name(),
                                    p.runs.len() - s.ok_runs,
                                    p.runs.len(),
                                    why_missing(p)
                                ));
                            }
                        }
                        None => {
                            let _ = writeln!(
                                md,
                                "| {} | {} | {tasks} | not measured | | | | | | |",
                                c.label(),
                                a.name()
                            );
                            missing.push(format!(
                                "{} ({}) at {tasks} tasks: {}",
                                c.label(),
                                a.name(),
                                why_missing(p)
                            ));
                        }
                    }
                }
            }
        }
        if !missing.is_empty() {
            let _ = writeln!(md, "\nMissing from the charts, and why:\n");
            for m in missing {
                let _ = writeln!(md, "- {m}");
            }
        }
        md.push('\n');
    }

    if !r.driverbench.is_empty() {
        let _ = writeln!(
            md,
            "## DriverBench\n\nMongoDB's driver benchmark tasks (the spec's data sets and sizes), \
             scored in MB/s: the dataset size over the median iteration time; min–max of the \
             per-round medians in brackets. Up to {:.0} s per task and contender, in {} \
             interleaved rounds, sequential (one task), once with each allocator. The BSON tasks \
             measure the `bson` crate each driver uses (3.1 for may_mongo, 2.x for the official \
             crate) and no I/O.\n",
            r.driverbench_seconds, r.runs
        );
        let names: Vec<String> = r.driverbench[0]
            .scores
            .iter()
            .map(|s| s.contender.clone())
            .collect();
        let _ = writeln!(
            md,
            "| task | allocator | MB | {} | iterations |\n|---|---|---|{}---|",
            names.join(" | "),
            "---|".repeat(names.len())
        );
        for t in &r.driverbench {
            let cells: Vec<String> = t
                .scores
                .iter()
                .map(|s| match &s.error {
                    Some(e) => format!("failed: {e}"),
                    None => {
                        let (lo, hi) = s.range(t.bytes);
                        format!("{:.2} ({lo:.2}–{hi:.2})", s.mb_per_s(t.bytes))
                    }
                })
                .collect();
            let iters: Vec<String> = t
                .scores
                .iter()
                .map(|s| s.rounds.iter().map(Vec::len).sum::<usize>().to_string())
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {} | {} |",
                t.task,
                t.allocator,
                t.bytes / 1e6,
                cells.join(" | "),
                iters.join(" / ")
            );
        }
        md.push('\n');
    }
    if !r.profiles.is_empty() {
        let _ = writeln!(
            md,
            "## Profiles of the missed targets\n\nEach missed target's may_mongo point, run again \
             under `perf record -g` (cpu-clock samples of the contender's process; the server is \
             another process). The functions with the most samples of their own:\n"
        );
        for p in &r.profiles {
            let _ = writeln!(md, "### {}\n\n```text\n{}\n```\n", p.what, p.top.join("\n"));
        }
    }
    let path = dir.join("report.md");
    std::fs::write(&path, md).map_err(|e| format!("writing {}: {e}", path.display()))
}
