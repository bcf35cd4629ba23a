//! `docker-compose.yml` stays in step with `make run`: it parses as YAML, names the same
//! services and published ports, its HAProxy config (rendered by `cluster render-haproxy`
//! from the same template) is accepted by `haproxy -c`, and its profile `redis-cluster` is
//! the Redis Cluster of `make run REDIS_SHARDS=3`.
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

/// The compose file with its `<<:` merge keys applied, as Docker Compose reads it.
fn compose() -> Value {
    let mut v: Value = serde_yaml::from_str(&root("docker-compose.yml"))
        .expect("docker-compose.yml is valid YAML");
    v.apply_merge().expect("merge keys resolve");
    v
}

/// The services of profile `profile`, or those without a profile (always started) for None.
fn services_of(c: &Value, profile: Option<&str>) -> BTreeSet<String> {
    c["services"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, svc)| {
            let profiles = svc["profiles"].as_sequence();
            match profile {
                None => profiles.is_none(),
                Some(p) => profiles.is_some_and(|ps| ps.iter().any(|x| x.as_str() == Some(p))),
            }
        })
        .filter_map(|(k, _)| k.as_str().map(str::to_owned))
        .collect()
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
    let names = services_of(&c, None);
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

/// `redis-cluster.env` as `(key, value)` pairs.
fn env_file() -> Vec<(String, String)> {
    root("redis-cluster.env")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn compose_redis_cluster_profile_mirrors_redis_shards_3() {
    let c = compose();
    let nodes: Vec<String> = (1..=3).map(|i| format!("redis-node-{i}")).collect();
    let mut expected: BTreeSet<String> = nodes.iter().cloned().collect();
    expected.insert("redis-cluster-create".into());
    assert_eq!(services_of(&c, Some("redis-cluster")), expected);

    // Every node runs the launcher's cluster node command, less what differs in a container
    // (bind address, dir, ports: the defaults there).
    let launcher = procs::redis::cluster_node_command(
        std::path::Path::new("/data"),
        6379,
        16379,
        cluster::REDIS_NODE_TIMEOUT_MS,
    );
    let launcher: Vec<String> = launcher
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let local_only = ["--port", "--bind", "--dir", "--daemonize", "--cluster-port"];
    for name in &nodes {
        let svc = service(&c, name);
        assert_eq!(svc["image"].as_str(), Some("redis:7"));
        let cmd: Vec<String> = svc["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(cmd[0], "redis-server");
        for pair in launcher.chunks(2) {
            if local_only.contains(&pair[0].as_str()) {
                continue;
            }
            let i = cmd.iter().position(|w| *w == pair[0]);
            let value = i.and_then(|i| cmd.get(i + 1));
            assert_eq!(value, Some(&pair[1]), "{name}: {}", pair[0]);
        }
        assert_eq!(
            cmd.len(),
            launcher.len() + 1 - 2 * (local_only.len()),
            "{cmd:?}"
        );
    }

    let create = service(&c, "redis-cluster-create");
    let script = create["command"].as_sequence().unwrap().last().unwrap();
    let script = script.as_str().unwrap();
    assert!(script.contains("redis-cli --cluster create"), "{script}");
    assert!(
        script.contains("--cluster-replicas 0 --cluster-yes"),
        "{script}"
    );
    for name in &nodes {
        assert!(
            script.contains(&format!("$$(addr {name}):6379")),
            "{script}"
        );
        assert_eq!(
            create["depends_on"][name.as_str()]["condition"].as_str(),
            Some("service_healthy")
        );
    }

    // The servers: REDIS_URL from the env file, and they wait for the cluster's creation.
    let file = env_file();
    let get = |k: &str| {
        file.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("COMPOSE_PROFILES"), Some("redis-cluster"));
    let url = get("REDIS_URL").unwrap();
    let named: Vec<String> = nodes.iter().map(|n| format!("{n}:6379")).collect();
    assert_eq!(
        url,
        format!(
            "redis-cluster://{}?node={}",
            named[0],
            named[1..].join("&node=")
        )
    );
    for name in ["api", "edge-1", "edge-2"] {
        let svc = service(&c, name);
        assert_eq!(env(svc, "REDIS_URL"), "${REDIS_URL:-redis://redis:6379}");
        let dep = &svc["depends_on"]["redis-cluster-create"];
        assert_eq!(
            dep["condition"].as_str(),
            Some("service_completed_successfully"),
            "{name}"
        );
        assert_eq!(dep["required"].as_bool(), Some(false), "{name}");
    }
}
