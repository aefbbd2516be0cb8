//! A fresh PostgreSQL schema per test on the server at `HOOKRELAY_TEST_DATABASE_URL` (default: the local
//! server CI provides), so test runs never see each other's data. The schema is dropped when the guard goes.

use tokio_postgres::NoTls;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of its own; `url` points a server at it.
pub struct TestSchema {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestSchema {
    pub async fn create() -> Self {
        let admin_url = std::env::var("HOOKRELAY_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let name = format!("hr_test_{:016x}", rand::random::<u64>());
        let client = connect(&admin_url).await;
        client.batch_execute(&format!("CREATE SCHEMA {name}")).await.expect("create test schema");
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-csearch_path%3D{name}");
        Self { name, url, admin_url }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Best effort, on a thread of its own: Drop cannot await, and the test's runtime may be gone.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok((client, connection)) = tokio_postgres::connect(&url, NoTls).await {
                        tokio::spawn(connection);
                        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await;
                    }
                });
            }
        })
        .join();
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|err| {
        panic!(
            "these tests need PostgreSQL at {url} ({err}); start it, or point HOOKRELAY_TEST_DATABASE_URL at one \
             where the user may create schemas"
        )
    });
    tokio::spawn(connection);
    client
}
