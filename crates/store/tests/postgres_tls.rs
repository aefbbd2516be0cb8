//! TLS to PostgreSQL against a cluster this test starts itself (`initdb` on a free loopback port, `ssl = on`, a
//! certificate from a CA it generates with `openssl`), so the machine's own server stays as it is. The cluster
//! refuses unencrypted connections; one database takes only client certificates.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use hookrelay_store::postgres::PostgresStore;

/// PostgreSQL's server programs: on PATH, or where Debian installs them.
fn pg_program(name: &str) -> PathBuf {
    let on_path = Command::new("sh").args(["-c", &format!("command -v {name}")]).output();
    if let Ok(found) = on_path
        && found.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.filter_map(|dir| dir.ok()).map(|dir| dir.path().join("bin").join(name)).collect())
        .unwrap_or_default();
    versions.retain(|path| path.exists());
    versions.sort();
    versions.pop().unwrap_or_else(|| panic!("{name} not found: the TLS tests need PostgreSQL's server programs"))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Runs a PostgreSQL program, as the `postgres` user when this runs as root (initdb refuses root).
fn run_pg(program: &str, args: &[&str]) {
    let path = pg_program(program);
    let output = if is_root() {
        Command::new("runuser").args(["-u", "postgres", "--"]).arg(&path).args(args).output()
    } else {
        Command::new(&path).args(args).output()
    }
    .unwrap_or_else(|err| panic!("{program} does not run: {err}"));
    assert!(output.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(output.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// A certificate `ca` signed for `subject`, with the X.509 v3 extension `extension`: `{name}.crt`, `{name}.key`.
fn issue(dir: &Path, ca: &str, name: &str, subject: &str, extension: &str) {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let crt = format!("{name}.crt");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    );
    let ext = format!("{name}.ext");
    std::fs::write(dir.join(&ext), format!("{extension}\n")).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

fn new_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "2",
        ],
    );
}

/// A PostgreSQL cluster with TLS on a free port; stopped when dropped.
struct TlsCluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl TlsCluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = &dir.path().to_owned();
        new_ca(path, "ca");
        issue(path, "ca", "server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1");
        // The client certificate's name is the role it logs in as (`cert` authentication).
        issue(path, "ca", "client", "/CN=postgres", "extendedKeyUsage=clientAuth");
        new_ca(path, "other-ca");
        let data = path.join("data");
        if is_root() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(path).status().expect("chown");
            assert!(status.success());
        }
        std::fs::set_permissions(path.join("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).ok();
        run_pg("initdb", &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "--no-sync"]);
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\nssl = on\n\
             ssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\nssl_ca_file = '{dir}/ca.crt'\n\
             fsync = off\n",
            dir = path.display()
        );
        let mut existing = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        existing.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), existing).unwrap();
        // No `hostnossl` line: a connection without TLS finds no entry and is refused.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl certdb postgres 127.0.0.1/32 cert\nhostssl all postgres 127.0.0.1/32 trust\n",
        )
        .unwrap();
        let log = path.join("log");
        run_pg("pg_ctl", &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "start"]);
        let cluster = Self { dir, port };
        run_pg("createdb", &["-h", path.to_str().unwrap(), "-p", &port.to_string(), "-U", "postgres", "certdb"]);
        cluster
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The cluster's URL naming it `host` (the name a certificate is checked against); the connection itself
    /// always goes to 127.0.0.1 (`hostaddr`), so no name is ever looked up.
    fn url(&self, host: &str, database: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/{database}?hostaddr=127.0.0.1&{query}", self.port)
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let stop = ["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "stop"];
        let _ = std::panic::catch_unwind(|| run_pg("pg_ctl", &stop));
    }
}

async fn connects(url: &str) -> Result<(), String> {
    PostgresStore::connect(url, 2).await.map(|_| ()).map_err(|err| err.to_string())
}

#[tokio::test]
async fn tls_modes_check_what_libpq_checks() {
    let cluster = TlsCluster::start();
    let ca = cluster.file("ca.crt");
    let other_ca = cluster.file("other-ca.crt");

    // verify-full: the chain and the host name (the certificate names 127.0.0.1).
    let full = cluster.url("127.0.0.1", "postgres", &format!("sslmode=verify-full&sslrootcert={ca}"));
    connects(&full).await.expect("verify-full with the cluster's CA connects and migrates");
    let wrong_name = cluster.url("db.other.test", "postgres", &format!("sslmode=verify-full&sslrootcert={ca}"));
    assert!(connects(&wrong_name).await.is_err(), "a certificate for another name is refused by verify-full");
    let wrong_ca = cluster.url("127.0.0.1", "postgres", &format!("sslmode=verify-full&sslrootcert={other_ca}"));
    assert!(connects(&wrong_ca).await.is_err(), "a certificate from an untrusted CA is refused");

    // verify-ca: the chain only.
    connects(&cluster.url("db.other.test", "postgres", &format!("sslmode=verify-ca&sslrootcert={ca}")))
        .await
        .expect("verify-ca accepts the cluster's certificate under another name");
    let untrusted = cluster.url("127.0.0.1", "postgres", &format!("sslmode=verify-ca&sslrootcert={other_ca}"));
    assert!(connects(&untrusted).await.is_err(), "verify-ca still checks the chain");

    // require and prefer encrypt without checking; disable (and no sslmode) does not encrypt, which this
    // cluster refuses.
    connects(&cluster.url("127.0.0.1", "postgres", "sslmode=require")).await.expect("require connects");
    connects(&cluster.url("127.0.0.1", "postgres", "sslmode=prefer")).await.expect("prefer connects");
    let refused = connects(&cluster.url("127.0.0.1", "postgres", "sslmode=disable")).await;
    assert!(refused.as_ref().is_err_and(|err| err.contains("no encryption") || err.contains("pg_hba")), "{refused:?}");
    assert!(connects(&format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port)).await.is_err());

    // A database that takes client certificates only.
    let with_cert = cluster.url(
        "127.0.0.1",
        "certdb",
        &format!(
            "sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
            cluster.file("client.crt"),
            cluster.file("client.key")
        ),
    );
    connects(&with_cert).await.expect("the client certificate logs in");
    let without_cert = cluster.url("127.0.0.1", "certdb", &format!("sslmode=verify-full&sslrootcert={ca}"));
    assert!(connects(&without_cert).await.is_err(), "without a client certificate the login is refused");

    // Files that cannot be used are named in the error.
    let missing = cluster.url("127.0.0.1", "postgres", "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
    let err = connects(&missing).await.expect_err("a missing CA file");
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}
