//! Edge memory: resident set size of the edge processes, from `/proc/<pid>/status`.

use std::path::Path;

use crate::args::Args;

/// One edge process's RSS at one moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EdgeRss {
    pub id: String,
    pub pid: u32,
    pub rss_kib: u64,
}

/// Edge RSS before and after the sockets were opened.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Memory {
    pub before: Vec<EdgeRss>,
    pub after: Vec<EdgeRss>,
    /// Growth of all edges' RSS divided by the sockets connected, in bytes.
    pub per_socket_bytes: Option<f64>,
}

impl Memory {
    pub fn between(before: Vec<EdgeRss>, after: Vec<EdgeRss>, sockets: u64) -> Self {
        let sum = |v: &[EdgeRss]| v.iter().map(|e| e.rss_kib).sum::<u64>();
        let per_socket_bytes = (!after.is_empty() && sockets > 0)
            .then(|| (sum(&after) as f64 - sum(&before) as f64) * 1024.0 / sockets as f64);
        Memory {
            before,
            after,
            per_socket_bytes,
        }
    }
}

/// RSS of every edge named by `--cluster-json` or `--edge-pids`.
pub fn rss(args: &Args) -> Vec<EdgeRss> {
    let mut pids: Vec<(String, u32)> = args
        .edge_pids
        .iter()
        .map(|p| (format!("pid-{p}"), *p))
        .collect();
    if let Some(path) = &args.cluster_json {
        pids.extend(edges_in_cluster_json(path));
    }
    pids.into_iter()
        .filter_map(|(id, pid)| read_rss_kib(pid).map(|rss_kib| EdgeRss { id, pid, rss_kib }))
        .collect()
}

/// `(id, pid)` of every object with `"role": "edge"` anywhere in the launcher's JSON.
pub fn edges_in_cluster_json(path: &Path) -> Vec<(String, u32)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    collect_edges(&v, &mut out);
    out
}

fn collect_edges(v: &serde_json::Value, out: &mut Vec<(String, u32)>) {
    match v {
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_edges(x, out)),
        serde_json::Value::Object(o) => {
            let is_edge = o.get("role").and_then(|r| r.as_str()) == Some("edge");
            let pid = o.get("pid").and_then(|p| p.as_u64());
            if let (true, Some(pid)) = (is_edge, pid) {
                let id = o
                    .get("id")
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .unwrap_or_else(|| format!("pid-{pid}"));
                out.push((id, pid as u32));
            } else {
                o.values().for_each(|x| collect_edges(x, out));
            }
        }
        _ => {}
    }
}

/// `VmRSS` of `pid`, in KiB.
pub fn read_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}
