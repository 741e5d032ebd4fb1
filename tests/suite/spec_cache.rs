//! The spec cache (`ORGFORM_CACHE_DIR`), through the real binary: a warm run plans byte for byte
//! what a cold one does; an edit is seen even at the same size and time; a damaged or foreign
//! entry is a miss; a folder that is a link or that others may write is not used; `off` turns
//! it off; a provider's type reaches every file that uses it; no secret value is kept.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::harness::{Run, orgform};

/// The repository's example specs, and a file of many Heron organizations (read in pieces).
fn specs(dir: &Path) {
    crate::e2e::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("specs"),
        &dir.join("specs"),
    );
    let mut many = String::from("# generated\n");
    for i in 0..80 {
        many.push_str(&format!(
            r##"
[org.many_{i:03}]
provider = "heron_prod"
crm_provider = "hubspot"
instance_url = "https://many-{i:03}.example.com"
auth = {{ access_token = {{ env = "MANY_TOKEN" }} }}
secret = {{ env = "MANY_WEBHOOK_SECRET" }}
failure_notification_channel = "#many-{i}"
config = {{ default_id = {{ external_name = "Company" }} }}
"##
        ));
    }
    write(&dir.join("specs/many.toml"), &many);
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Secrets the specs reference, with values that must never be kept.
const SECRETS: &[(&str, &str)] = &[
    ("MANY_TOKEN", "kept-nowhere-token-value"),
    ("MANY_WEBHOOK_SECRET", "kept-nowhere-webhook-value"),
    ("ACME_HERON_WEBHOOK_SECRET", "kept-nowhere-acme-webhook"),
];

/// An offline plan in JSON (every declared attribute in it), with the cache at `cache`; the
/// number of files read back from it, from the debug log.
fn plan(dir: &Path, cache: &Path) -> (Run, usize) {
    let run = orgform(dir)
        .args(["plan", "--sandbox", "--refresh=false", "--format", "json"])
        .env("ORGFORM_CACHE_DIR", cache.to_str().unwrap())
        .env("RUST_LOG", "orgform=debug")
        .envs(SECRETS)
        .run();
    let read_back = read_back(&run);
    (run, read_back)
}

fn read_back(run: &Run) -> usize {
    run.stderr
        .lines()
        .find_map(|line| {
            let (_, rest) = line.split_once("spec cache: ")?;
            rest.split(' ').next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// The plan without any cache.
fn cold(dir: &Path) -> String {
    let run = orgform(dir)
        .args(["plan", "--sandbox", "--refresh=false", "--format", "json"])
        .env("ORGFORM_CACHE_DIR", "off")
        .envs(SECRETS)
        .run()
        .expect(0);
    timeless(&run.stdout)
}

/// A JSON plan without the time it was made at.
fn timeless(plan: &str) -> String {
    plan.lines()
        .filter(|l| !l.trim_start().starts_with("\"made_at\""))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Fails with the first line where two plans differ (they are long).
#[track_caller]
fn same_plan(run: Run, expected: &str, what: &str) {
    let got = timeless(&run.expect(0).stdout);
    if got != expected {
        let at = got
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{what}: the plan differs at line {}: {:?} where a run without the cache has {:?}",
            at + 1,
            got.lines().nth(at),
            expected.lines().nth(at)
        );
    }
}

/// Every entry file under the cache (the folder files aside).
fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for folder in std::fs::read_dir(cache.join("specs-v1")).unwrap().flatten() {
        for entry in std::fs::read_dir(folder.path()).unwrap().flatten() {
            if entry.file_name() != "folder" {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// The entry that holds `marker` (an address written in it).
fn entry_with(cache: &Path, marker: &str) -> PathBuf {
    entries(cache)
        .into_iter()
        .find(|e| {
            let bytes = std::fs::read(e).unwrap();
            bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
        })
        .unwrap_or_else(|| panic!("an entry holds {marker}"))
}

#[test]
fn a_warm_run_plans_byte_for_byte_what_a_cold_one_does() {
    let dir = tempfile::tempdir().unwrap();
    specs(dir.path());
    let cache = dir.path().join("cache");
    let expected = cold(dir.path());
    let (first, read) = plan(dir.path(), &cache);
    assert_eq!(read, 0, "nothing to read back at first");
    same_plan(first, &expected, "first");
    let (warm, read) = plan(dir.path(), &cache);
    // The example files that declare providers or templates are never kept: all but
    // heron.toml, and many.toml.
    assert_eq!(read, 2);
    same_plan(warm, &expected, "warm");
    // One entry per file kept, private to its user, in a private folder.
    let kept = entries(&cache);
    assert_eq!(kept.len(), read);
    for entry in &kept {
        let mode = std::fs::metadata(entry).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", entry.display());
    }
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn an_edit_of_the_same_size_and_time_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    specs(dir.path());
    let cache = dir.path().join("cache");
    plan(dir.path(), &cache).0.expect(0);
    let path = dir.path().join("specs/many.toml");
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replace("#many-42\"", "#mine-42\"");
    assert_eq!(edited.len(), text.len());
    write(&path, &edited);
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(before).unwrap();
    drop(file);
    let (warm, _) = plan(dir.path(), &cache);
    let warm = timeless(&warm.expect(0).stdout);
    assert!(warm.contains("#mine-42"), "the edit is planned");
    assert!(!warm.contains("#many-42\""));
    assert!(warm == cold(dir.path()));
    // The entry was replaced, not added to.
    let (again, read) = plan(dir.path(), &cache);
    same_plan(again, &warm, "again");
    assert_eq!(entries(&cache).len(), read);
}

#[test]
fn a_damaged_truncated_or_foreign_entry_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    specs(dir.path());
    let cache = dir.path().join("cache");
    let expected = cold(dir.path());
    plan(dir.path(), &cache).0.expect(0);
    let (_, all) = plan(dir.path(), &cache);
    type Damage = fn(&mut Vec<u8>);
    let damages: &[(&str, Damage)] = &[
        ("truncated", |b| b.truncate(b.len() / 2)),
        ("empty", Vec::clear),
        // A byte of an organization's address changed, and so no longer what the check says.
        ("changed", |b| {
            let at = b.windows(8).position(|w| w == b"many_042").unwrap();
            b[at + 5] = b'9';
        }),
        // Another format or version: the header's magic, then its key.
        ("foreign magic", |b| b[0] ^= 0x20),
        ("foreign key", |b| b[25] ^= 0x01),
        ("longer", |b| b.extend_from_slice(b"more")),
    ];
    for (what, damage) in damages {
        let entry = entry_with(&cache, "many_042");
        let mut bytes = std::fs::read(&entry).unwrap();
        damage(&mut bytes);
        write_keeping_mode(&entry, &bytes);
        let (run, read) = plan(dir.path(), &cache);
        same_plan(run, &expected, what);
        assert_eq!(read, all - 1, "{what}: the damaged entry is not read");
        // And it is whole again after that run.
        assert_eq!(plan(dir.path(), &cache).1, all, "{what}");
    }
    // An entry others may read, or a link, is not orgform's: not read.
    let entry = entry_with(&cache, "many_042");
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        plan(dir.path(), &cache).1,
        all - 1,
        "an entry others may read"
    );
    let entry = entry_with(&cache, "many_042");
    let target = dir.path().join("elsewhere");
    std::fs::rename(&entry, &target).unwrap();
    std::os::unix::fs::symlink(&target, &entry).unwrap();
    let (run, read) = plan(dir.path(), &cache);
    same_plan(run, &expected, "link");
    assert_eq!(read, all - 1, "an entry that is a link");
}

fn write_keeping_mode(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_cache_folder_that_is_a_link_or_that_others_may_write_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    specs(dir.path());
    let expected = cold(dir.path());
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    for cache in [&link, &open] {
        for _ in 0..2 {
            let (run, read) = plan(dir.path(), cache);
            let run = run.expect(0);
            assert!(timeless(&run.stdout) == expected);
            assert_eq!(read, 0);
            assert!(
                run.stderr.contains("is not a folder private to this user"),
                "says why:\n{}",
                run.stderr
            );
        }
    }
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0, "nothing kept");
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0, "nothing kept");
    // Nor one inside the specs folder, where a pull request could put one.
    let inside = dir.path().join("specs/.cache");
    let (run, read) = plan(dir.path(), &inside);
    let run = run.expect(0);
    assert!(timeless(&run.stdout) == expected);
    assert_eq!(read, 0);
    assert!(
        run.stderr.contains("inside the specs folder"),
        "{}",
        run.stderr
    );
}

#[test]
fn off_turns_the_cache_off() {
    let dir = tempfile::tempdir().unwrap();
    specs(dir.path());
    for off in ["off", ""] {
        for _ in 0..2 {
            let run = orgform(dir.path())
                .args(["plan", "--sandbox", "--refresh=false", "--format", "json"])
                .env("ORGFORM_CACHE_DIR", off)
                .env("HOME", dir.path().to_str().unwrap())
                .env("XDG_CACHE_HOME", dir.path().join("xdg").to_str().unwrap())
                .env("RUST_LOG", "orgform=debug")
                .envs(SECRETS)
                .run()
                .expect(0);
            assert_eq!(read_back(&run), 0);
            assert!(!run.stderr.contains("spec cache"), "{}", run.stderr);
        }
    }
    assert!(!dir.path().join("xdg").exists());
    assert!(!dir.path().join(".cache").exists());
    // A folder that can't be made (a read-only home): no cache, and nothing said.
    let run = orgform(dir.path())
        .args(["validate"])
        .env("ORGFORM_CACHE_DIR", "/proc/orgform-cache")
        .envs(SECRETS)
        .run()
        .expect(0);
    assert!(!run.stderr.contains("cache"), "{}", run.stderr);
    // Unset, it is under XDG_CACHE_HOME, else HOME.
    let home = |xdg: Option<&Path>| {
        let mut run = orgform(dir.path())
            .args(["validate"])
            .env_remove("ORGFORM_CACHE_DIR")
            .env("HOME", dir.path().to_str().unwrap())
            .envs(SECRETS);
        run = match xdg {
            Some(xdg) => run.env("XDG_CACHE_HOME", xdg.to_str().unwrap()),
            None => run.env_remove("XDG_CACHE_HOME"),
        };
        run.run().expect(0);
    };
    home(Some(&dir.path().join("xdg")));
    assert!(dir.path().join("xdg/orgform/specs-v1").is_dir());
    home(None);
    assert!(dir.path().join(".cache/orgform/specs-v1").is_dir());
}

#[test]
fn a_providers_type_reaches_every_file_that_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("specs")).unwrap();
    let providers = dir.path().join("specs/providers.toml");
    write(
        &providers,
        "[provider.p]\ntype = \"heron\"\napi_key = { env = \"HERON_API_KEY\" }\n",
    );
    write(
        &dir.path().join("specs/orgs.toml"),
        "[org.a]\nprovider = \"p\"\ncrm_provider = \"hubspot\"\ninstance_url = \"https://a.example.com\"\nauth = { access_token = { env = \"T\" } }\nsecret = { env = \"S\" }\nconfig = { default_id = { external_name = \"Company\" } }\n",
    );
    let cache = dir.path().join("cache");
    let validate = || {
        orgform(dir.path())
            .args(["validate"])
            .env("ORGFORM_CACHE_DIR", cache.to_str().unwrap())
            .env("RUST_LOG", "orgform=debug")
            .run()
    };
    validate().expect(0);
    assert_eq!(read_back(&validate().expect(0)), 1);
    // Another type: the organization no longer fits its provider's schema.
    write(
        &providers,
        "[provider.p]\ntype = \"neoncrm\"\norg_id = { env = \"N\" }\napi_key = { env = \"K\" }\n",
    );
    let warm = validate().expect(1);
    let cold = orgform(dir.path())
        .args(["validate"])
        .env("ORGFORM_CACHE_DIR", "off")
        .run()
        .expect(1);
    assert!(warm.stderr.contains("orgs.toml"), "{}", warm.stderr);
    assert_eq!(without_logs(&warm.stderr), cold.stderr);
    assert_eq!(warm.stdout, cold.stdout);
}

/// stderr without the debug log's lines.
fn without_logs(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.contains(" DEBUG "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A problem across files (a name declared twice) found with a file read back is told as a run
/// without the cache tells it, quoting the file; and nothing of a run with a problem is kept.
#[test]
fn a_problem_with_a_file_read_back_is_told_from_the_text() {
    let dir = tempfile::tempdir().unwrap();
    specs(dir.path());
    let cache = dir.path().join("cache");
    plan(dir.path(), &cache).0.expect(0);
    let kept = entries(&cache);
    write(
        &dir.path().join("specs/zz_again.toml"),
        "[org.many_007]\nprovider = \"heron_prod\"\ncrm_provider = \"hubspot\"\ninstance_url = \"https://again.example.com\"\nauth = { access_token = { env = \"T\" } }\nsecret = { env = \"S\" }\nconfig = { default_id = { external_name = \"Company\" } }\n",
    );
    let validate = |cache: &str| {
        orgform(dir.path())
            .args(["validate"])
            .env("ORGFORM_CACHE_DIR", cache)
            .envs(SECRETS)
            .run()
            .expect(1)
    };
    let warm = validate(cache.to_str().unwrap());
    let cold = validate("off");
    assert!(warm.stderr.contains("declared twice"), "{}", warm.stderr);
    assert_eq!(warm.stderr, cold.stderr);
    assert_eq!(entries(&cache), kept, "nothing more kept");
}

#[test]
fn entries_hold_no_secret_value_and_files_gone_leave_none() {
    let dir = tempfile::tempdir().unwrap();
    specs(dir.path());
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    let file_secret = "kept-nowhere-file-secret";
    write(
        &dir.path().join("secrets/initech-webhook-secret"),
        file_secret,
    );
    let cache = dir.path().join("cache");
    plan(dir.path(), &cache).0.expect(0);
    let (_, read) = plan(dir.path(), &cache);
    assert!(read > 0);
    let mut values: Vec<&str> = SECRETS.iter().map(|(_, v)| *v).collect();
    values.push(file_secret);
    for entry in entries(&cache) {
        let bytes = std::fs::read(&entry).unwrap();
        for value in &values {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{} holds a secret value",
                entry.display()
            );
        }
    }
    // A file removed takes its entry with it; a specs folder removed, its cache.
    std::fs::remove_file(dir.path().join("specs/many.toml")).unwrap();
    let (_, after) = plan(dir.path(), &cache);
    assert_eq!(after, read - 1);
    assert_eq!(entries(&cache).len(), after);
    let other = dir.path().join("other");
    specs(&other);
    plan(&other, &cache).0.expect(0);
    assert_eq!(
        std::fs::read_dir(cache.join("specs-v1")).unwrap().count(),
        2
    );
    std::fs::remove_dir_all(&other).unwrap();
    // The next run that keeps something prunes the folder that is gone.
    write(&dir.path().join("specs/new.toml"), "# nothing yet\n");
    plan(dir.path(), &cache).0.expect(0);
    assert_eq!(
        std::fs::read_dir(cache.join("specs-v1")).unwrap().count(),
        1
    );
}

/// A file that declares a provider in a way the quick scan does not see (an escaped key) is
/// found in the checks; then nothing is kept, and every run reads every file as text.
#[test]
fn a_provider_the_scan_misses_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("specs")).unwrap();
    let hidden = dir.path().join("specs/hidden.toml");
    let provider = |t: &str| {
        format!(
            "\"\\u0070rovider\".p = {{ type = \"{t}\", api_key = {{ env = \"K\" }}, org_id = {{ env = \"O\" }} }}\n"
        )
    };
    write(&hidden, &provider("heron"));
    write(
        &dir.path().join("specs/orgs.toml"),
        "[org.a]\nprovider = \"p\"\ncrm_provider = \"hubspot\"\ninstance_url = \"https://a.example.com\"\nauth = { access_token = { env = \"T\" } }\nsecret = { env = \"S\" }\nconfig = { default_id = { external_name = \"Company\" } }\n",
    );
    let cache = dir.path().join("cache");
    let validate = |cache: &str| {
        orgform(dir.path())
            .args(["validate"])
            .env("ORGFORM_CACHE_DIR", cache)
            .env("RUST_LOG", "orgform=debug")
            .run()
    };
    for _ in 0..2 {
        let run = validate(cache.to_str().unwrap());
        assert_eq!(run.code, 1, "heron takes no org_id:\n{}", run.stderr);
    }
    write(
        &hidden,
        &provider("heron").replace(", org_id = { env = \"O\" }", ""),
    );
    for _ in 0..2 {
        let run = validate(cache.to_str().unwrap()).expect(0);
        assert_eq!(read_back(&run), 0, "{}", run.stderr);
    }
    assert!(entries(&cache).is_empty());
    write(&hidden, &provider("neoncrm"));
    let warm = validate(cache.to_str().unwrap()).expect(1);
    let cold = validate("off").expect(1);
    assert_eq!(without_logs(&warm.stderr), without_logs(&cold.stderr));
}
