//! `docker-compose.yml` stays in step with `make run`: it parses as YAML, names the same
//! services and published ports, and its HAProxy config (rendered by `cluster render-haproxy`
//! from the same template) is accepted by `haproxy -c`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use cluster::haproxy::{self, HaproxyConfig};
use cluster::Options;
use serde_yaml::Value;

fn root(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn compose() -> Value {
    serde_yaml::from_str(&root("docker-compose.yml")).expect("docker-compose.yml is valid YAML")
}

fn service<'a>(c: &'a Value, name: &str) -> &'a Value {
    c["services"]
        .get(name)
        .unwrap_or_else(|| panic!("service {name} missing"))
}

fn ports(svc: &Value) -> Vec<String> {
    svc["ports"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn env<'a>(svc: &'a Value, key: &str) -> &'a str {
    svc["environment"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing"))
}

/// The value following `flag` in the haproxy service's shell command.
fn flag(c: &Value, flag: &str) -> String {
    let cmd = service(c, "haproxy")["command"]
        .as_sequence()
        .and_then(|s| s.last())
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    let words: Vec<&str> = cmd.split_whitespace().collect();
    assert!(cmd.contains("cluster render-haproxy"), "{cmd}");
    assert!(cmd.contains("exec haproxy -db -f"), "{cmd}");
    let i = words.iter().position(|w| *w == flag).unwrap();
    words[i + 1].to_owned()
}

#[test]
fn compose_names_the_same_services_and_ports_as_make_run() {
    let c = compose();
    let defaults = Options::new(".data", ".");
    let names: BTreeSet<String> = c["services"]
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    let mut expected: BTreeSet<String> = ["postgres", "redis", "api", "haproxy"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for i in 1..=defaults.edges {
        expected.insert(format!("edge-{i}"));
    }
    assert_eq!(names, expected);
    let http = defaults.http_port;
    assert_eq!(
        ports(service(&c, "haproxy")),
        vec![format!("{http}:{http}")]
    );
    assert_eq!(
        ports(service(&c, "postgres")),
        vec![format!("{}:5432", defaults.pg_port)]
    );
    assert_eq!(
        ports(service(&c, "redis")),
        vec![format!("{}:6379", defaults.redis_port)]
    );
    assert_eq!(flag(&c, "--bind"), format!(":{http}"));
}

#[test]
fn compose_haproxy_lists_every_edge_and_api_on_their_listen_ports() {
    let c = compose();
    let edges = haproxy::parse_servers(&flag(&c, "--edges"), "edge");
    let edge_services: Vec<String> = (1..=edges.len()).map(|i| format!("edge-{i}")).collect();
    for (server, name) in edges.iter().zip(&edge_services) {
        let svc = service(&c, name);
        assert_eq!(
            server.name, *name,
            "HAProxy server name = EDGE_ID = service"
        );
        assert_eq!(env(svc, "EDGE_ID"), name);
        let port = env(svc, "LISTEN").rsplit(':').next().unwrap();
        assert_eq!(server.addr, format!("{name}:{port}"));
        assert_eq!(svc["command"][0].as_str(), Some("edge-server"));
    }
    let apis = haproxy::parse_servers(&flag(&c, "--apis"), "api");
    assert_eq!(apis.len(), 1);
    let api = service(&c, "api");
    let port = env(api, "LISTEN").rsplit(':').next().unwrap();
    assert_eq!(apis[0].addr, format!("api:{port}"));
    assert_eq!(api["command"][0].as_str(), Some("api-server"));
    let dockerfile = root("Dockerfile");
    for bin in ["api-server", "edge-server", "cluster"] {
        assert!(
            dockerfile.contains(&format!("-p {bin}")),
            "Dockerfile builds {bin}"
        );
    }
}

#[test]
fn compose_haproxy_config_passes_haproxy_check() {
    let c = compose();
    let dir = std::env::temp_dir().join(format!("compose-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = HaproxyConfig {
        bind: flag(&c, "--bind"),
        stats_socket: dir.join("s.sock").display().to_string(),
        maxconn: haproxy::DEFAULT_MAXCONN,
        edges: haproxy::parse_servers(&flag(&c, "--edges"), "edge"),
        apis: haproxy::parse_servers(&flag(&c, "--apis"), "api"),
        global: Vec::new(),
        defaults: Vec::new(),
    };
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, haproxy::render(&cfg)).unwrap();
    // Container names do not resolve here: `init-addr libc,none` lets HAProxy start anyway.
    let out = std::process::Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("run haproxy -c");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
