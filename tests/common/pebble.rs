//! Debian's `pebble` (a test ACME server) and `pebble-challtestsrv` (the DNS
//! it resolves names with: every name is 127.0.0.1), on loopback ports of
//! their own, with a throwaway CA for pebble's HTTPS made here.
//!
//! Pebble validates http-01 on `http_port` and tls-alpn-01 on `tls_port`, so a
//! test puts hookgate's listeners there. It logs `Added order` for each new
//! order, which is how a test counts them.
//!
//! On a machine without pebble (or curl, which fetches its root), `start`
//! returns `None` after saying the test is skipped; see `super::have_tool`.

use std::io::Read;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

pub struct Pebble {
    /// The ACME directory URL.
    pub directory: String,
    /// The CA that signed pebble's own HTTPS certificate (for `ca_file`).
    pub ca_file: String,
    pub http_port: u16,
    pub tls_port: u16,
    management_port: u16,
    log: PathBuf,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

/// How pebble is set up for one test.
pub struct PebbleOptions<'a> {
    /// Lifetime of the certificates it issues.
    pub validity: Duration,
    /// Names it refuses to order (`rejectedIdentifier`).
    pub blocklist: &'a [&'a str],
}

impl Default for PebbleOptions<'_> {
    fn default() -> Self {
        PebbleOptions { validity: Duration::from_secs(90 * 86_400), blocklist: &[] }
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Pebble {
    /// `[listen.tls.acme]` for this pebble: `shop.test` and `www.shop.test`,
    /// with `challenge` (`tls-alpn-01` or `http-01`) and `cache` as `cache_dir`.
    pub fn acme_table(&self, cache: &std::path::Path, challenge: &str) -> String {
        format!(
            "[listen.tls.acme]\ndomains = [\"shop.test\", \"www.shop.test\"]\ncontact = \"mailto:ops@shop.test\"\n\
             directory = \"{}\"\ncache_dir = \"{}\"\nchallenge = \"{challenge}\"\nca_file = \"{}\"\n",
            self.directory,
            cache.display(),
            self.ca_file
        )
    }

    /// Pebble and its DNS, started; `None` (the test is skipped) without them.
    pub fn start(options: PebbleOptions<'_>) -> Option<Pebble> {
        let tools = [("pebble", "pebble"), ("pebble-challtestsrv", "pebble"), ("curl", "curl")];
        if !tools.iter().all(|(tool, package)| super::have_tool(tool, package)) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "pebble test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        std::fs::write(path("ca.pem"), ca.pem()).unwrap();
        std::fs::write(path("pebble.pem"), leaf.pem()).unwrap();
        std::fs::write(path("pebble.key"), key.serialize_pem()).unwrap();

        let (acme_port, management_port) = (super::free_port(), super::free_port());
        let (http_port, tls_port, dns_port) = (super::free_port(), super::free_port(), free_udp_port());
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": path("pebble.pem"),
            "privateKey": path("pebble.key"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "domainBlocklist": options.blocklist,
            "certificateValidityPeriod": options.validity.as_secs(),
        }});
        std::fs::write(path("pebble.json"), config.to_string()).unwrap();

        let log = dir.path().join("pebble.log");
        let dns = format!("127.0.0.1:{dns_port}");
        let challtestsrv = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", &dns])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", super::free_port())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble-challtestsrv");
        let pebble = Command::new("pebble")
            .args(["-config", &path("pebble.json"), "-dnsserver", &dns])
            // No random sleeps before validating, no nonces refused on purpose,
            // and authorizations never reused, so every order validates.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble");
        let pebble = Pebble {
            directory: format!("https://127.0.0.1:{acme_port}/dir"),
            ca_file: path("ca.pem"),
            http_port,
            tls_port,
            management_port,
            log,
            children: vec![challtestsrv, pebble],
            dir,
        };
        let up = super::eventually(Duration::from_secs(15), || pebble.log().contains("ACME directory available"));
        assert!(up, "pebble did not start; its log:\n{}", pebble.log());
        Some(pebble)
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// The orders pebble has recorded, one log line each.
    pub fn orders(&self) -> Vec<String> {
        self.log().lines().filter(|l| l.contains("Added order")).map(str::to_string).collect()
    }

    /// Pebble's root CA (made fresh at each start), as a PEM file, fetched from
    /// its management interface with curl.
    pub fn root_file(&self) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--cacert", &self.ca_file])
            .arg(format!("https://127.0.0.1:{}/roots/0", self.management_port))
            .output()
            .expect("run curl");
        assert!(out.status.success(), "cannot fetch pebble's root: {}", String::from_utf8_lossy(&out.stderr));
        let file = self.dir.path().join("root.pem");
        std::fs::write(&file, out.stdout).unwrap();
        file.display().to_string()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
