//! `-exec`: walcast runs the application, forwards shutdown signals to it, and exits with
//! its code after a final sync that leaves the replica complete.

use std::process::Command;
use std::time::Duration;

use walcast_testbed::sqlite::driver_script;
use walcast_testbed::wait;

use crate::support::{assert_restores_exactly, walcast};

/// The application: the testbed's SQLite writer for `seconds`, then `exit CODE`.
fn app_command(db: &std::path::Path, seconds: u32, code: i32) -> String {
    format!(
        "python3 {} write {} --seconds {seconds} --autocheckpoint 50 --checkpoint-every 40; exit {code}",
        driver_script().display(),
        db.display()
    )
}

#[test]
fn runs_the_application_and_exits_with_its_code_after_the_final_upload() {
    let dir = tempfile::tempdir().unwrap();
    let (db, replica) = (dir.path().join("app.db"), dir.path().join("replica"));
    let out = walcast()
        .arg("replicate")
        .arg("-exec")
        .arg(app_command(&db, 3, 3))
        .arg(&db)
        .arg(&replica)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("replicating"), "{stderr}");
    assert_restores_exactly(&db, &replica, &dir.path().join("restored.db")).unwrap();
}

#[test]
fn a_signal_to_walcast_is_forwarded_to_the_application() {
    let dir = tempfile::tempdir().unwrap();
    let (db, replica) = (dir.path().join("app.db"), dir.path().join("replica"));
    let log = dir.path().join("walcast.log");
    let mut child = walcast()
        .arg("replicate")
        .arg("-exec")
        // `exec` so the signal reaches the writer itself, as it would a real application.
        .arg(format!(
            "exec {}",
            app_command(&db, 600, 0).split(';').next().unwrap()
        ))
        .arg(&db)
        .arg(&replica)
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait::until(Duration::from_secs(30), "walcast to replicate", || {
        Ok(std::fs::read_to_string(&log)?.contains("replicating"))
    })
    .unwrap();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    // The writer died of SIGTERM (128 + 15), and walcast reports that code.
    assert_eq!(status.code(), Some(143), "{text}");
    assert!(text.contains("forwarded shutdown"), "{text}");
    assert_restores_exactly(&db, &replica, &dir.path().join("restored.db")).unwrap();
}
