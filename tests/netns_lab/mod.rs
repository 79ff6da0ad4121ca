//! A three-namespace lab for the real-firewall tests:
//!
//! ```text
//!  client 10.200.1.2 ── veth ── 10.200.1.1  fw  10.200.2.1 ── veth ── 10.200.2.2 server
//!         fd00:201::2           fd00:201::1 (routes)
//! ```
//!
//! palisade's rules go into `fw` only. A listener in `fw` itself stands for a host
//! service (the input path); one in `server`, reached through `fw`, for a Docker-published
//! port (the forward path; field case 21). Nothing outside these namespaces is touched,
//! and a drop guard deletes them, also when a test fails.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Runs `argv`, panicking with its stderr (and a hint) on failure.
pub fn run(argv: &[&str]) {
    let out = Command::new(argv[0]).args(&argv[1..]).output();
    let out = out.unwrap_or_else(|e| {
        panic!(
            "firewall-tests: cannot run {:?}: {e}; install iproute2 and nftables",
            argv[0]
        )
    });
    assert!(
        out.status.success(),
        "firewall-tests: {} failed: {} (these tests need root: CAP_NET_ADMIN + CAP_SYS_ADMIN)",
        argv.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn require_tools(tools: &[(&str, &str)]) {
    for (tool, package) in [("ip", "iproute2")].iter().chain(tools) {
        let found = Command::new("which").arg(tool).output();
        let ok = found.is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "firewall-tests need `{tool}` on PATH: apt-get install {package}"
        );
    }
}

/// Three namespaces wired client — fw — server; deleted on drop.
pub struct Lab {
    pub client: String,
    pub fw: String,
    pub server: String,
}

impl Lab {
    /// Builds the lab; `tools` are further (program, Debian package) pairs the test needs.
    pub fn new(tools: &[(&str, &str)]) -> Lab {
        require_tools(tools);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("pal{}x{n}", std::process::id());
        let lab = Lab {
            client: format!("{tag}c"),
            fw: format!("{tag}f"),
            server: format!("{tag}s"),
        };
        for ns in [&lab.client, &lab.fw, &lab.server] {
            run(&["ip", "netns", "add", ns]);
        }
        lab.wire();
        lab
    }

    fn wire(&self) {
        let (c, f, s) = (self.client.as_str(), self.fw.as_str(), self.server.as_str());
        run(&[
            "ip", "-n", c, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", f,
        ]);
        run(&[
            "ip", "-n", s, "link", "add", "v0", "type", "veth", "peer", "name", "v2", "netns", f,
        ]);
        let addrs = [
            (c, "v0", "10.200.1.2/24"),
            (f, "v1", "10.200.1.1/24"),
            (f, "v2", "10.200.2.1/24"),
            (s, "v0", "10.200.2.2/24"),
        ];
        for (ns, dev, addr) in addrs {
            run(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
        }
        for (ns, dev, addr) in [(c, "v0", "fd00:201::2/64"), (f, "v1", "fd00:201::1/64")] {
            run(&[
                "ip", "-n", ns, "-6", "addr", "add", addr, "dev", dev, "nodad",
            ]);
        }
        for (ns, dev) in [(c, "v0"), (f, "v1"), (f, "v2"), (s, "v0")] {
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        for ns in [c, f, s] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        run(&[
            "ip",
            "-n",
            c,
            "route",
            "add",
            "default",
            "via",
            "10.200.1.1",
        ]);
        run(&[
            "ip",
            "-n",
            s,
            "route",
            "add",
            "default",
            "via",
            "10.200.2.1",
        ]);
        run(&[
            "ip",
            "netns",
            "exec",
            f,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.client, &self.fw, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a thread that has entered namespace `ns` (setns affects one thread).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    thread::spawn(move || {
        let fd = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        setns(&fd, CloneFlags::CLONE_NEWNET).expect("setns needs CAP_SYS_ADMIN");
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

/// A TCP listener in `ns` at `addr` that accepts (and drops) connections until the
/// returned flag is set.
pub fn listen(ns: &str, addr: &str) -> (SocketAddr, Arc<AtomicBool>) {
    let stop = Arc::new(AtomicBool::new(false));
    let addr: SocketAddr = addr.parse().unwrap();
    let listener = in_netns(ns, move || {
        TcpListener::bind(addr).expect("bind in namespace")
    });
    listener.set_nonblocking(true).unwrap();
    let bound = listener.local_addr().unwrap();
    let flag = stop.clone();
    thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let _ = listener.accept();
            thread::sleep(Duration::from_millis(20));
        }
    });
    (bound, stop)
}

/// Whether a TCP connection from `ns` to `to` is established within 1 s.
pub fn connects(ns: &str, to: SocketAddr) -> bool {
    in_netns(ns, move || {
        TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok()
    })
}

/// Waits up to 5 s for the lab to pass traffic (links and neighbour discovery settle).
pub fn reachable(ns: &str, to: SocketAddr) -> bool {
    (0..5).any(|_| connects(ns, to))
}

/// Host service (input path) and "published container port" (forward path).
pub fn services(lab: &Lab) -> [(SocketAddr, Arc<AtomicBool>); 2] {
    [
        listen(&lab.fw, "10.200.1.1:0"),
        listen(&lab.server, "10.200.2.2:0"),
    ]
}
