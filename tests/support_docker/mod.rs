//! Shared helpers for the tests against the real Docker Engine
//! (`--features docker-tests`): a tiny image built FROM scratch with a static busybox
//! (no registry is reachable), containers created from it, and a [`Guard`] that
//! removes everything it created — all labelled `palisade-test=1` — even when a test
//! fails.
#![allow(dead_code)]

use std::time::Duration;

use palisade::sources::docker::api::{DEFAULT_SOCKET, DockerApi, encode_query};
use serde_json::{Value, json};

pub const BUSYBOX: &str = "/bin/busybox";

/// Everything one test created; removed on drop.
pub struct Guard {
    pub api: DockerApi,
    pub image: String,
    pub containers: Vec<String>,
    pub networks: Vec<String>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for id in &self.containers {
            let _ = self
                .api
                .post_json(&format!("/containers/{id}/unpause"), None);
            let _ = self.api.delete(&format!("/containers/{id}?force=1&v=1"));
        }
        for id in &self.networks {
            let _ = self.api.delete(&format!("/networks/{id}"));
        }
        let _ = self
            .api
            .delete(&format!("/images/{}?force=1", encode_query(&self.image)));
    }
}

pub fn engine() -> DockerApi {
    let api = DockerApi::new(DEFAULT_SOCKET).with_timeout(Some(Duration::from_secs(60)));
    if let Err(e) = api.ping() {
        panic!("docker-tests need a Docker Engine at {DEFAULT_SOCKET}, which did not answer: {e}");
    }
    api
}

/// Builds `palisade-test-<name>:1` FROM scratch with busybox installed in /bin.
pub fn setup(name: &str) -> Guard {
    let api = engine();
    let busybox = std::fs::read(BUSYBOX)
        .unwrap_or_else(|e| panic!("{BUSYBOX} is missing ({e}); apt-get install busybox-static"));
    let dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\n\
        RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nLABEL palisade-test=1\n";
    let mut tar = tar::Builder::new(Vec::new());
    add_file(&mut tar, "Dockerfile", dockerfile.as_bytes(), 0o644);
    add_file(&mut tar, "busybox", &busybox, 0o755);
    let context = tar.into_inner().unwrap();
    let image = format!("palisade-test-{name}:1");
    let labels = encode_query(&json!({"palisade-test": "1"}).to_string());
    let path = format!(
        "/build?t={}&rm=1&forcerm=1&labels={labels}",
        encode_query(&image)
    );
    let guard = Guard {
        api: api.clone(),
        image: image.clone(),
        containers: vec![],
        networks: vec![],
    };
    let out = api
        .request("POST", &path, Some(("application/x-tar", &context)))
        .unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(!out.contains("\"error\""), "building {image} failed: {out}");
    guard
}

fn add_file(tar: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8], mode: u32) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_cksum();
    tar.append_data(&mut h, name, data).unwrap();
}

impl Guard {
    /// Creates (not starts) a container running `script` with extra create fields.
    pub fn create(&mut self, name: &str, script: &str, extra: Value) -> String {
        let mut body = json!({
            "Image": self.image,
            "Cmd": ["/bin/sh", "-c", script],
            "Labels": {"palisade-test": "1"},
        });
        merge(&mut body, extra);
        let path = format!("/containers/create?name={}", encode_query(name));
        let v = self.api.post_json(&path, Some(&body)).unwrap();
        let id = v["Id"].as_str().unwrap().to_owned();
        self.containers.push(id.clone());
        id
    }

    pub fn start(&self, id: &str) {
        self.api
            .post_json(&format!("/containers/{id}/start"), None)
            .unwrap();
    }

    pub fn wait(&self, id: &str) {
        self.api
            .post_json(&format!("/containers/{id}/wait"), None)
            .unwrap();
    }

    pub fn inspect(&self, id: &str) -> Value {
        self.api
            .get_json(&format!("/containers/{id}/json"))
            .unwrap()
    }
}

pub fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
}
