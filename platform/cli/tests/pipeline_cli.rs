//! `fjord pipeline validate` on real files: a valid manifest passes, and a
//! bad one fails with the file, line, column and field of each problem.

use std::process::Command;

fn fjord(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(args)
        .output()
        .expect("run fjord");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const VALID: &str = "\
apiVersion: fjord.dev/v1
kind: Pipeline
metadata:
  name: web-logs
spec:
  source:
    topic: raw-logs
  steps:
    - name: errors
      plugin: filter
      config:
        expr: 'status >= 500'
  sinks:
    - topic: errors
      serializer: {plugin: json}
";

#[test]
fn a_valid_manifest_passes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yaml");
    std::fs::write(&file, VALID).unwrap();
    let (ok, stdout, stderr) = fjord(&["pipeline", "validate", file.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("pipeline web-logs is valid"), "{stdout}");
}

#[test]
fn errors_name_file_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    let bad = VALID
        .replace("plugin: filter", "plugin: fliter")
        .replace("topic: errors", "topic: raw-logs");
    std::fs::write(&file, bad).unwrap();
    let (ok, _, stderr) = fjord(&["pipeline", "validate", file.to_str().unwrap()]);
    assert!(!ok);
    let name = file.display().to_string();
    assert!(
        stderr.contains(&format!("{name}:10:15: spec.steps[0].plugin:")),
        "{stderr}"
    );
    assert!(stderr.contains("fliter"), "{stderr}");
    assert!(
        stderr.contains(&format!("{name}:14:14: spec.sinks[0].topic:")),
        "{stderr}"
    );
}
