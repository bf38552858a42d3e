//! What the log-file tests share: a Python virtual environment with pyarrow
//! and DuckDB (the independent readers), the script that reads a log
//! directory with both, and directory listings.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The build directory: `CARGO_TARGET_DIR`, else three levels above this
/// test executable (`target/debug/deps/…`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test executable");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
}

/// The venv's Python, created under the build directory (`pyvenv`) with
/// `pyarrow` and `duckdb` from PyPI when missing. Created under a
/// temporary name and renamed, so concurrent test binaries never see half
/// a venv.
pub fn venv_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = target_dir().join("pyvenv");
        let python = venv.join("bin").join("python");
        let ready = |python: &Path| {
            Command::new(python)
                .args(["-c", "import pyarrow, duckdb"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if ready(&python) {
            return python;
        }
        let staging = target_dir().join(format!("pyvenv.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        run(Command::new("python3").arg("-m").arg("venv").arg(&staging));
        run(Command::new(staging.join("bin").join("python")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "pyarrow",
            "duckdb",
        ]));
        let _ = std::fs::remove_dir_all(&venv);
        if std::fs::rename(&staging, &venv).is_err() {
            // Another test binary finished first.
            let _ = std::fs::remove_dir_all(&staging);
        }
        assert!(
            ready(&python),
            "the venv at {} lacks pyarrow or duckdb",
            venv.display()
        );
        python
    })
}

fn run(command: &mut Command) {
    let output = command.output().expect("run a setup command");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Reads every Parquet file under `dir` whose name does not start with `.`
/// with pyarrow (file by file) and with DuckDB (all at once, and with Hive
/// partitioning when `hive`), and prints what they saw as JSON.
const READ_PARQUET: &str = r#"
import json, os, sys
import pyarrow.parquet as pq
import duckdb

root, hive = sys.argv[1], sys.argv[2] == "hive"
files = []
for d, dirs, names in os.walk(root):
    for n in names:
        if not n.startswith("."):
            files.append(os.path.join(d, n))
files.sort()
per_file, schema = {}, None
for f in files:
    table = pq.read_table(f)
    per_file[os.path.relpath(f, root)] = table.num_rows
    s = [[field.name, str(field.type), field.nullable] for field in table.schema]
    if schema is None:
        schema = s
    assert s == schema, (f, s, schema)
out = {"files": per_file, "schema": schema, "pyarrow_rows": sum(per_file.values())}
con = duckdb.connect()
if files:
    out["duckdb_rows"] = con.execute("select count(*) from read_parquet(?)", [files]).fetchone()[0]
    out["duckdb_status"] = dict(con.execute(
        "select connectionStatus, count(*) from read_parquet(?) group by 1", [files]).fetchall())
    out["distinct_ids"] = con.execute(
        "select count(distinct connectionId) from read_parquet(?)", [files]).fetchone()[0]
    if hive:
        rows = con.execute(
            "select distributionid, year, month, day, hour, count(*) "
            "from read_parquet(?, hive_partitioning=true, hive_types_autocast=false) "
            "group by all order by all",
            [os.path.join(root, "**", "*.parquet")]).fetchall()
        out["hive"] = [[str(v) for v in r] for r in rows]
        mismatched = con.execute(
            "select count(*) "
            "from read_parquet(?, hive_partitioning=true, hive_types_autocast=false) "
            "where distributionId <> distributionid "
            "or strftime(make_timestamp(cast(eventTimestamp as bigint) * 1000), '%Y-%m-%d %H') "
            "<> year || '-' || month || '-' || day || ' ' || hour",
            [os.path.join(root, "**", "*.parquet")]).fetchone()[0]
        out["hive_mismatched"] = mismatched
else:
    out["duckdb_rows"] = 0
    out["duckdb_status"] = {}
    out["distinct_ids"] = 0
print(json.dumps(out))
"#;

/// What pyarrow and DuckDB read from a log directory.
pub fn read_parquet_dir(dir: &Path, hive: bool) -> serde_json::Value {
    let output = Command::new(venv_python())
        .arg("-c")
        .arg(READ_PARQUET)
        .arg(dir)
        .arg(if hive { "hive" } else { "flat" })
        .output()
        .expect("run the venv's python");
    assert!(
        output.status.success(),
        "reading {} with pyarrow and DuckDB failed ({}):\n{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

/// Every file under `dir`, as paths relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read a log directory") {
            let entry = entry.expect("a directory entry");
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).expect("under the root");
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The file name of a relative path.
pub fn file_name(relative: &str) -> &str {
    relative.rsplit('/').next().unwrap_or(relative)
}
