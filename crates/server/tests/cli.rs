//! The `confab` binary as an operator meets it: started with no configuration at all, refusing
//! bad settings, managing migrations, writing the API spec.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn confab(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
    // A clean environment: only what each test sets applies.
    for (key, _) in std::env::vars() {
        if key.starts_with("CONFAB_") {
            command.env_remove(key);
        }
    }
    command
        .env("CONFAB_DATA_DIR", data_dir)
        .env("CONFAB_LOG", "warn");
    command
}

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Starts `confab serve` on a free port with JSON logs; returns it, its port, and the log
/// lines it wrote before it started listening.
fn start_server(dir: &std::path::Path) -> (Running, u16, Vec<serde_json::Value>) {
    let child = confab(dir)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("CONFAB_LOG_FORMAT", "json")
        .env("CONFAB_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Running(child);
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut events = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "the server did not report its port"
        );
        let line = lines
            .next()
            .expect("the server exited before listening")
            .unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(port) = event["port"].as_u64() {
            // Keep draining the log so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (server, u16::try_from(port).unwrap(), events);
        }
        events.push(event);
    }
}

fn http_post_json(port: u16, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_with_no_configuration_uses_sqlite_in_the_data_dir_and_keeps_a_generated_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, port, events) = start_server(dir.path());
    let warned_about_secret = events.iter().any(|event| {
        event["level"] == "WARN"
            && event["message"]
                .as_str()
                .unwrap_or("")
                .contains("CONFAB_JWT_SECRET")
    });
    assert!(
        warned_about_secret,
        "a generated secret must be announced with a warning"
    );
    assert!(http_get(port, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(dir.path().join("confab.db").exists());
    let secret = std::fs::read_to_string(dir.path().join("jwt_secret")).unwrap();
    assert_eq!(secret.trim().len(), 128, "64 random bytes, hex-encoded");
}

#[test]
fn a_bad_setting_stops_the_server_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (variable, value) in [
        ("CONFAB_BIND", "not-an-address"),
        ("CONFAB_JWT_SECRET", "too-short"),
        ("CONFAB_DATABASE_URL", "mysql://localhost/confab"),
        ("CONFAB_LOG", "confab=loud"),
    ] {
        let output = confab(dir.path())
            .arg("serve")
            .env(variable, value)
            .output()
            .unwrap();
        assert!(
            !output.status.success(),
            "{variable}={value} must stop the server"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
    let output = confab(dir.path())
        .env("CONFAB_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("xml"));
}

#[test]
fn migrate_reports_applies_and_rolls_back_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let status = |dir: &std::path::Path| {
        let output = confab(dir).args(["migrate", "status"]).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(status(dir.path()).contains("pending"));
    assert!(
        confab(dir.path())
            .args(["migrate", "up"])
            .status()
            .unwrap()
            .success()
    );
    let applied = status(dir.path());
    assert!(
        applied.contains("applied") && !applied.contains("pending"),
        "{applied}"
    );
    assert!(
        confab(dir.path())
            .args(["migrate", "down"])
            .status()
            .unwrap()
            .success()
    );
    assert!(status(dir.path()).contains("pending"));
}

#[test]
fn openapi_writes_the_spec_with_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("specs");
    let status = confab(dir.path())
        .arg("openapi")
        .arg("--out-dir")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("openapi.json")).unwrap()).unwrap();
    for path in [
        "/api/v1/auth/signup",
        "/api/v1/auth/login",
        "/api/v1/auth/me",
        "/api/v1/conversations",
        "/api/v1/conversations/direct/{username}",
        "/api/v1/conversations/groups",
        "/api/v1/conversations/{id}",
        "/api/v1/conversations/{id}/read",
        "/api/v1/conversations/{id}/messages",
        "/api/v1/ws",
        "/healthz",
        "/readyz",
    ] {
        assert!(spec["paths"].get(path).is_some(), "missing {path}");
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let me = &spec["paths"]["/api/v1/auth/me"]["get"];
    assert!(
        me["responses"].get("401").is_some(),
        "errors are documented"
    );
    assert!(
        me["security"].is_array(),
        "protected routes name the bearer scheme"
    );
}

#[tokio::test]
async fn sigterm_closes_sockets_with_going_away_and_exits_cleanly() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let dir = tempfile::tempdir().unwrap();
    let (mut server, port, _) = start_server(dir.path());
    let signup = http_post_json(
        port,
        "/api/v1/auth/signup",
        r#"{"username":"ann","email":"ann@example.org","password":"correct horse"}"#,
    );
    assert!(signup.starts_with("HTTP/1.1 201"), "{signup}");
    let body = signup.split("\r\n\r\n").nth(1).unwrap();
    let token = serde_json::from_str::<serde_json::Value>(body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/v1/ws?token={token}"))
            .await
            .unwrap();
    let hello = socket.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"hello\""));

    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("no close frame after SIGTERM");
    assert_eq!(close.unwrap().code, CloseCode::Away);
    drop(socket);
    let status = tokio::task::spawn_blocking(move || server.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "confab exited with {status}");
}
