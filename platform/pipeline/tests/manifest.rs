//! Manifests as users write them, and the exact message each mistake gets.

use fjord_pipeline::{
    HostResolver, ManifestErrors, Pipeline, PluginResolver, StartFrom, check_existing_topics,
    validate_set,
};
use fjord_plugin_host::{HostConfig, HostPolicy, PluginHost};
use fjord_sdk::{ConfigKey, PluginInfo, PluginKind};

const WEB: &str = r#"apiVersion: fjord.dev/v1
kind: Pipeline
metadata:
  name: web-logs
  labels: {team: web}
spec:
  source:
    topic: raw-logs
    startFrom: earliest
  steps:
    - name: parse
      plugin: regex-parse
      config: {pattern: '(?P<level>\w+)', limit: 10, strict: true, fields: {a: [1, x]}}
      capabilities:
        dirs: [{host: /var/log, guest: /logs, readOnly: true}]
        network: ["api.example.com:443"]
        env: {REGION: eu-1}
    - name: keep
      plugin: filter
      config: {expr: 'level == "error"'}
  sinks:
    - topic: parsed-logs
      create: {partitions: 3}
      partitioner: {plugin: murmur2, config: {}}
      serializer: {plugin: json}
      when: 'level == "error"'
    - connector: {plugin: stdout, config: {format: json}}
  deadLetter: {topic: web-logs.dlq}
  delivery: at-least-once
  parallelism: 2
"#;

/// Knows a fixed set of plugins, so validation is tested without a host.
struct Fake;

impl PluginResolver for Fake {
    fn resolve(&self, reference: &str, kind: PluginKind) -> Result<PluginInfo, String> {
        let (found, required): (PluginKind, &[&str]) = match reference {
            "regex-parse" => (PluginKind::Processor, &["pattern"]),
            "filter" => (PluginKind::Processor, &["expr"]),
            "murmur2" => (PluginKind::Partitioner, &[]),
            "json" => (PluginKind::Serializer, &[]),
            "stdout" => (PluginKind::Sink, &[]),
            "file" => (PluginKind::Source, &["path"]),
            _ => return Err(format!("no plugin called {reference:?}")),
        };
        if found != kind {
            return Err(format!("{reference:?} is a {found}, not a {kind}"));
        }
        let mut info = PluginInfo::new(reference, "1").with_kind(found);
        for key in required {
            info = info.key(ConfigKey::required(key, "needed"));
        }
        Ok(info)
    }
}

/// `WEB` with line `n` (1-based) replaced by `lines` (none: removed).
fn edit(n: usize, lines: &[&str]) -> String {
    let mut out: Vec<&str> = WEB.lines().collect();
    out.splice(n - 1..n, lines.iter().copied());
    out.join("\n") + "\n"
}

fn errors(text: &str) -> String {
    match Pipeline::load("web.yaml", text, &Fake) {
        Ok(_) => String::from("(no error)"),
        Err(ManifestErrors(e)) => e
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn the_full_manifest_is_valid_and_modelled() {
    let p = Pipeline::load("web.yaml", WEB, &Fake).map_err(|e| e.to_string());
    let p = match p {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(p.metadata.name, "web-logs");
    assert_eq!(p.group_id(), "pipeline.web-logs");
    assert_eq!(
        p.metadata.labels.get("team").map(String::as_str),
        Some("web")
    );
    assert_eq!(p.spec.source.topic.as_deref(), Some("raw-logs"));
    assert_eq!(p.spec.source.start_from(), StartFrom::Earliest);
    assert_eq!(p.spec.steps.len(), 2);
    assert_eq!(
        p.spec.steps[0].plugin_config().into_pairs(),
        [
            ("pattern", r"(?P<level>\w+)"),
            ("limit", "10"),
            ("strict", "true"),
            ("fields", r#"{"a":[1,"x"]}"#),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    let caps = p.spec.steps[0].plugin_capabilities();
    assert_eq!(caps.dirs.len(), 1);
    assert_eq!(caps.dirs[0].host, std::path::PathBuf::from("/var/log"));
    assert_eq!(caps.dirs[0].guest, "/logs");
    assert!(caps.dirs[0].read_only);
    assert_eq!(caps.network, ["api.example.com:443"]);
    assert_eq!(caps.env, [("REGION".to_owned(), "eu-1".to_owned())]);
    assert_eq!(p.spec.steps[1].plugin_capabilities(), Default::default());
    let sink = &p.spec.sinks[0];
    assert_eq!(sink.create.as_ref().and_then(|c| c.partitions), Some(3));
    assert_eq!(sink.when.as_deref(), Some(r#"level == "error""#));
    assert_eq!(
        p.spec.sinks[1]
            .connector
            .as_ref()
            .map(|c| c.plugin_config().into_pairs()),
        Some(vec![("format".to_owned(), "json".to_owned())])
    );
    assert_eq!(
        p.spec.dead_letter.as_ref().map(|d| d.topic.as_str()),
        Some("web-logs.dlq")
    );
    assert_eq!(p.spec.parallelism, 2);
    assert_eq!(
        p.location_of("spec.steps[1].plugin")
            .map(|l| (l.line, l.column)),
        Some((19, 15))
    );
}

#[test]
fn defaults_apply_to_what_is_left_out() {
    let text = "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {name: m}\nspec:\n  source: {topic: a}\n  sinks: [{topic: b}]\n";
    let p = Pipeline::from_yaml("m.yaml", text).map_err(|e| e.to_string());
    let Ok(p) = p else { panic!("{p:?}") };
    assert_eq!(p.spec.source.start_from(), StartFrom::Committed);
    assert!(p.spec.steps.is_empty());
    assert_eq!(p.spec.parallelism, 1);
    assert_eq!(p.spec.delivery, fjord_pipeline::Delivery::AtLeastOnce);
}

#[test]
fn yaml_syntax_errors_are_located() {
    assert_eq!(
        errors(&edit(12, &["      plugin: regex-parse: x"])),
        "web.yaml:12:26: spec.steps[0]: mapping values are not allowed in this context"
    );
}

#[test]
fn unknown_fields_name_the_field() {
    assert_eq!(
        errors(&edit(12, &["      plugn: regex-parse"])),
        "web.yaml:12:7: spec.steps[0].plugn: unknown field `plugn`, expected one of `name`, `plugin`, `config`, `capabilities`"
    );
}

#[test]
fn wrong_types_are_located() {
    assert_eq!(
        errors(&edit(30, &["  parallelism: many"])),
        r#"web.yaml:30:16: spec.parallelism: invalid type: string "many", expected u32"#
    );
}

#[test]
fn missing_fields_point_at_their_mapping() {
    assert_eq!(
        errors(&edit(19, &[])),
        "web.yaml:18:7: spec.steps[1]: missing field `plugin`"
    );
}

#[test]
fn unknown_enum_values_list_the_accepted_ones() {
    assert_eq!(
        errors(&edit(9, &["    startFrom: newest"])),
        "web.yaml:9:16: spec.source.startFrom: unknown variant `newest`, expected one of `earliest`, `latest`, `committed`"
    );
    assert_eq!(
        errors(&edit(29, &["  delivery: exactly-twice"])),
        "web.yaml:29:13: spec.delivery: unknown variant `exactly-twice`, expected `at-least-once` or `exactly-once`"
    );
}

#[test]
fn api_version_and_kind_are_checked() {
    let text = edit(1, &["apiVersion: fjord.dev/v2"]).replace("kind: Pipeline", "kind: Pipe");
    assert_eq!(
        errors(&text),
        "web.yaml:1:13: apiVersion: expected \"fjord.dev/v1\", found \"fjord.dev/v2\"\n\
         web.yaml:2:7: kind: expected \"Pipeline\", found \"Pipe\""
    );
}

#[test]
fn pipeline_names_are_checked() {
    assert_eq!(
        errors(&edit(4, &["  name: Web_Logs"])),
        r#"web.yaml:4:9: metadata.name: "Web_Logs" must start with a lowercase letter or a digit"#
    );
    let long = format!("  name: {}", "a".repeat(201));
    assert_eq!(
        errors(&edit(4, &[&long])),
        "web.yaml:4:9: metadata.name: pipeline names are at most 200 characters; this one has 201"
    );
}

#[test]
fn a_principal_is_a_kafka_user() {
    let named = |principal: &str| {
        edit(
            5,
            &[
                "  labels: {team: web}",
                &format!("  principal: '{principal}'"),
            ],
        )
    };
    let pipeline = Pipeline::load("web.yaml", &named("User:etl"), &Fake).unwrap();
    assert_eq!(
        pipeline.named_principal(),
        Some(fjord_broker::Principal::User("etl".into()))
    );
    assert_eq!(
        Pipeline::load("web.yaml", &named("User:ANONYMOUS"), &Fake)
            .unwrap()
            .named_principal(),
        Some(fjord_broker::Principal::Anonymous)
    );
    for (principal, wanted) in [
        (
            "etl",
            r#"web.yaml:6:14: metadata.principal: "etl" is not a principal: Kafka's form is User:<name>, like User:etl"#,
        ),
        (
            "Group:etl",
            r#"web.yaml:6:14: metadata.principal: "Group:etl": principals are of type User (User:<name>), not Group"#,
        ),
        (
            "User:*",
            "web.yaml:6:14: metadata.principal: User:* stands for every principal in an ACL; a pipeline runs as one, like User:etl",
        ),
        (
            "User:fjord-internal",
            "web.yaml:6:14: metadata.principal: User:fjord-internal is the platform's own principal; a pipeline cannot run as it",
        ),
    ] {
        assert_eq!(errors(&named(principal)), wanted, "{principal}");
    }
}

#[test]
fn a_source_is_a_topic_or_a_connector() {
    assert_eq!(
        errors(&edit(
            9,
            &["    connector: {plugin: file, config: {path: /x}}"]
        )),
        "web.yaml:9:5: spec.source.connector: a source is either a `topic` or a `connector`, not both"
    );
    assert_eq!(
        errors(&edit(8, &[])).lines().next().unwrap_or(""),
        "web.yaml:8:5: spec.source: a source needs a `topic` or a `connector`"
    );
    assert_eq!(
        errors(&edit(
            8,
            &["    connector: {plugin: file, config: {path: /x}}"]
        )),
        "web.yaml:9:5: spec.source.startFrom: `startFrom` applies to a topic source, not to a connector"
    );
}

#[test]
fn topic_names_follow_kafkas_rules() {
    assert_eq!(
        errors(&edit(8, &["    topic: raw logs"])),
        r#"web.yaml:8:12: spec.source.topic: "raw logs" contains ' '; topic names use only a-z, A-Z, 0-9, '.', '_' and '-'"#
    );
    assert_eq!(
        errors(&edit(28, &["  deadLetter: {topic: '..'}"])),
        r#"web.yaml:28:23: spec.deadLetter.topic: ".." is not a legal topic name"#
    );
    let long = format!("    - topic: {}", "t".repeat(250));
    assert_eq!(
        errors(&edit(22, &[&long])),
        "web.yaml:22:14: spec.sinks[0].topic: topic names are at most 249 characters; this one has 250"
    );
}

#[test]
fn step_names_are_unique() {
    assert_eq!(
        errors(&edit(18, &["    - name: parse"])),
        r#"web.yaml:18:13: spec.steps[1].name: step name "parse" is already used by spec.steps[0]"#
    );
    assert_eq!(
        errors(&edit(18, &["    - name: source"])),
        r#"web.yaml:18:13: spec.steps[1].name: step name "source" is reserved for the source connector's metrics"#
    );
}

#[test]
fn a_pipeline_needs_a_sink() {
    let mut lines: Vec<&str> = WEB.lines().collect();
    lines.splice(20..27, ["  sinks: []"]);
    assert_eq!(
        errors(&(lines.join("\n") + "\n")),
        "web.yaml:21:10: spec.sinks: a pipeline needs at least one sink"
    );
}

#[test]
fn a_sink_is_a_topic_or_a_connector() {
    assert_eq!(
        errors(&edit(
            27,
            &["    - connector: {plugin: stdout}", "      topic: out"]
        )),
        "web.yaml:27:7: spec.sinks[1].connector: a sink is either a `topic` or a `connector`, not both"
    );
    assert_eq!(
        errors(&edit(27, &["    - when: x"])),
        "web.yaml:27:7: spec.sinks[1]: a sink needs a `topic` or a `connector`"
    );
    assert_eq!(
        errors(&edit(
            27,
            &[
                "    - connector: {plugin: stdout}",
                "      serializer: {plugin: json}"
            ]
        )),
        "web.yaml:28:7: spec.sinks[1].serializer: `serializer` applies to a topic sink, not to a connector"
    );
    assert_eq!(
        errors(&edit(26, &["      when: ' '"])),
        "web.yaml:26:13: spec.sinks[0].when: an empty condition; leave `when` out to send every record"
    );
    assert_eq!(
        errors(&edit(26, &["      when: 'status >= '"])),
        "web.yaml:26:13: spec.sinks[0].when: not a condition: column 11: expected a string, number, true, false or null, found the end"
    );
}

#[test]
fn plugins_must_exist() {
    assert_eq!(
        errors(&edit(12, &["      plugin: regx-parse"])),
        r#"web.yaml:12:15: spec.steps[0].plugin: no plugin called "regx-parse""#
    );
}

#[test]
fn plugins_must_be_of_the_kind_their_place_needs() {
    assert_eq!(
        errors(&edit(19, &["      plugin: json"])),
        r#"web.yaml:19:15: spec.steps[1].plugin: "json" is a serializer, not a processor"#
    );
    assert_eq!(
        errors(&edit(24, &["      partitioner: {plugin: stdout}"])),
        r#"web.yaml:24:29: spec.sinks[0].partitioner.plugin: "stdout" is a sink, not a partitioner"#
    );
    assert_eq!(
        errors(&edit(25, &["      serializer: {plugin: murmur2}"])),
        r#"web.yaml:25:28: spec.sinks[0].serializer.plugin: "murmur2" is a partitioner, not a serializer"#
    );
    assert_eq!(
        errors(&edit(27, &["    - connector: {plugin: file}"])),
        r#"web.yaml:27:27: spec.sinks[1].connector.plugin: "file" is a source, not a sink"#
    );
    let source = edit(8, &["    connector: {plugin: stdout}"]);
    assert_eq!(
        errors(&source.replace("    startFrom: earliest\n", "")),
        r#"web.yaml:8:25: spec.source.connector.plugin: "stdout" is a sink, not a source"#
    );
}

#[test]
fn required_config_keys_must_be_given() {
    assert_eq!(
        errors(&edit(20, &["      config: {exp: 'x'}"])),
        r#"web.yaml:20:15: spec.steps[1].config: plugin "filter" needs config key `expr` (needed)"#
    );
}

#[test]
fn a_pipeline_cannot_write_to_its_source_topic() {
    assert_eq!(
        errors(&edit(22, &["    - topic: raw-logs"])),
        r#"web.yaml:22:14: spec.sinks[0].topic: "raw-logs" is also the source topic: records would cycle"#
    );
    assert_eq!(
        errors(&edit(28, &["  deadLetter: {topic: raw-logs}"])),
        r#"web.yaml:28:23: spec.deadLetter.topic: "raw-logs" is also the source topic: failed records would cycle"#
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let text = edit(4, &["  name: Web"])
        .replace("plugin: filter", "plugin: filtr")
        .replace("parallelism: 2", "parallelism: 0");
    assert_eq!(
        errors(&text),
        "web.yaml:4:9: metadata.name: \"Web\" must start with a lowercase letter or a digit\n\
         web.yaml:30:16: spec.parallelism: must be at least 1\n\
         web.yaml:19:15: spec.steps[1].plugin: no plugin called \"filtr\""
    );
}

fn small(name: &str, from: &str, to: &str) -> String {
    format!(
        "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {{name: {name}}}\nspec:\n  source: {{topic: {from}}}\n  sinks:\n    - topic: {to}\n"
    )
}

#[test]
fn cycles_across_manifests_are_named() {
    let set: Vec<Pipeline> = [
        ("a.yaml", small("a", "t1", "t2")),
        ("b.yaml", small("b", "t2", "t3")),
        ("c.yaml", small("c", "t3", "t1")),
        ("d.yaml", small("d", "t3", "elsewhere")),
    ]
    .iter()
    .filter_map(|(f, t)| Pipeline::from_yaml(f, t).ok())
    .collect();
    assert_eq!(set.len(), 4);
    let e = validate_set(&set).map_err(|e| e.to_string());
    assert_eq!(
        e,
        Err(r#"a.yaml:7:14: spec.sinks[0].topic: topics form a cycle: a → "t2" → b → "t3" → c → "t1" → a"#.to_owned())
    );
    assert_eq!(validate_set(&set[..2]), Ok(()));
}

#[test]
fn names_are_unique_across_manifests() {
    let set: Vec<Pipeline> = [
        ("a.yaml", small("a", "x", "y")),
        ("b.yaml", small("a", "p", "q")),
    ]
    .iter()
    .filter_map(|(f, t)| Pipeline::from_yaml(f, t).ok())
    .collect();
    assert_eq!(
        validate_set(&set).map_err(|e| e.to_string()),
        Err(r#"b.yaml:3:18: metadata.name: pipeline "a" is also defined in a.yaml"#.to_owned())
    );
}

fn creating(name: &str, source: &str, sink: &str, partitions: u32) -> String {
    format!(
        "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {{name: {name}}}\nspec:\n  \
         source: {{topic: {source}}}\n  sinks:\n    - topic: {sink}\n      \
         create: {{partitions: {partitions}}}\n"
    )
}

/// The samples asked for 2 partitions of `logs.raw` in several manifests;
/// one asking for another count would get whichever started first.
#[test]
fn a_topic_created_with_different_partition_counts_is_a_conflict() {
    let set: Vec<Pipeline> = [
        ("a.yaml", creating("a", "x", "shared", 2)),
        ("b.yaml", creating("b", "y", "shared", 2)),
        ("c.yaml", creating("c", "z", "shared", 3)),
    ]
    .iter()
    .filter_map(|(f, t)| Pipeline::from_yaml(f, t).ok())
    .collect();
    assert_eq!(set.len(), 3);
    assert_eq!(
        validate_set(&set).map_err(|e| e.to_string()),
        Err(r#"c.yaml:8:28: spec.sinks[0].create.partitions: 3 partitions for topic "shared", but pipeline "a" (a.yaml) creates it with 2"#.to_owned())
    );
    assert_eq!(validate_set(&set[..2]), Ok(()));
}

#[test]
fn create_partitions_must_match_an_existing_topic() {
    let p = Pipeline::from_yaml("c.yaml", &creating("c", "z", "shared", 2)).unwrap();
    let existing = |topic: &str| (topic == "shared").then_some(1);
    assert_eq!(
        check_existing_topics(&p, &existing).map_err(|e| e.to_string()),
        Err(r#"c.yaml:8:28: spec.sinks[0].create.partitions: topic "shared" exists with 1 partition; `create` does not change it (ask for 1, or leave `partitions` out)"#.to_owned())
    );
    assert_eq!(check_existing_topics(&p, &|_| Some(2)), Ok(()));
    assert_eq!(check_existing_topics(&p, &|_| None), Ok(()));
}

#[test]
fn the_plugin_host_resolves_built_ins() {
    let host = match PluginHost::new(
        HostConfig {
            policy: HostPolicy {
                paths: vec!["/tmp".into()],
                ..HostPolicy::default()
            },
            ..HostConfig::default()
        },
        fjord_builtins::all(),
    ) {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    };
    let resolver = HostResolver::new(&host);
    let text = "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {name: m}\nspec:\n  source:\n    connector: {plugin: file, config: {path: /tmp/in.log}}\n  sinks:\n    - topic: out\n      partitioner: {plugin: murmur2}\n      serializer: {plugin: json}\n    - connector: {plugin: stdout}\n";
    assert!(Pipeline::load("m.yaml", text, &resolver).is_ok());
    let bad = text
        .replace("{plugin: murmur2}", "{plugin: json}")
        .replace("connector: {plugin: stdout}", "connector: {plugin: nope}")
        .replace(", config: {path: /tmp/in.log}", "");
    let e = Pipeline::load("m.yaml", &bad, &resolver).map_err(|e| e.to_string());
    assert_eq!(
        e.err().unwrap_or_default(),
        "m.yaml:6:16: spec.source.connector.config: plugin \"file\" needs config key `path` (the file to tail)\n\
         m.yaml:9:29: spec.sinks[0].partitioner.plugin: \"json\" is a serializer, not a partitioner\n\
         m.yaml:11:27: spec.sinks[1].connector.plugin: no built-in plugin called \"nope\" (built-in sinks: file, stdout, http, prometheus)"
    );
}

#[test]
fn the_example_in_the_reference_is_valid() {
    let doc = include_str!("../../../docs/pipelines.md");
    let yaml = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_default();
    let p = Pipeline::from_yaml("docs/pipelines.md", yaml).map_err(|e| e.to_string());
    assert_eq!(p.map(|p| p.spec.sinks.len()), Ok(3));
}

#[test]
fn config_values_and_capabilities_are_checked() {
    assert_eq!(
        errors(&edit(20, &["      config: {expr: ~}"])),
        r#"web.yaml:20:22: spec.steps[1].config.expr: no value; write "" for an empty string, or leave the key out"#
    );
    assert_eq!(
        errors(&edit(
            15,
            &["        dirs: [{host: /var/log, guest: logs}]"]
        )),
        r#"web.yaml:15:40: spec.steps[0].capabilities.dirs[0].guest: "logs" is not absolute: the plugin sees directories at absolute paths such as /data"#
    );
    assert_eq!(
        errors(&edit(16, &["        network: [api.example.com]"])),
        r#"web.yaml:16:19: spec.steps[0].capabilities.network[0]: "api.example.com" is not `host:port`"#
    );
}

#[test]
fn retry_needs_at_least_one_attempt_and_knows_its_fields() {
    let text = WEB.replace(
        "parallelism: 2",
        "parallelism: 2\n  retry: {attempts: 0, backoffMs: 5}",
    );
    assert_eq!(
        errors(&text),
        "web.yaml:31:21: spec.retry.attempts: must be at least 1 (the first try counts)"
    );
    let text = WEB.replace("parallelism: 2", "parallelism: 2\n  retry: {tries: 2}");
    assert!(
        errors(&text).contains("spec.retry.tries: unknown field `tries`"),
        "{}",
        errors(&text)
    );
}

/// A manifest reaching outside the operator's policy is refused at the
/// field that does, naming the setting.
#[test]
fn what_a_pipeline_touches_is_checked_against_the_policy() {
    let data = tempfile::tempdir().unwrap();
    let pipelines = data.path().join("pipelines");
    std::fs::create_dir(&pipelines).unwrap();
    let host = PluginHost::new(
        HostConfig {
            policy: HostPolicy {
                paths: vec![pipelines.clone()],
                ..HostPolicy::default()
            },
            ..HostConfig::default()
        },
        fjord_builtins::all(),
    )
    .unwrap();
    let manifest = |source: &str, sink_path: &str| {
        format!(
            "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {{name: m}}\nspec:\n  \
             source:\n    connector: {source}\n  sinks:\n    - connector: \
             {{plugin: file, config: {{path: '{sink_path}'}}}}\n"
        )
    };
    let inside = pipelines.join("out.log");
    let ok = manifest(
        "{plugin: http, config: {listen: '127.0.0.1:0'}}",
        inside.to_str().unwrap(),
    );
    assert!(Pipeline::load("m.yaml", &ok, &HostResolver::new(&host)).is_ok());

    let bad = manifest(
        "{plugin: http, config: {listen: '0.0.0.0:8088'}}",
        "/root/.ssh/authorized_keys",
    );
    let e = Pipeline::load("m.yaml", &bad, &HostResolver::new(&host))
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert!(
        lines[0].starts_with("m.yaml:6:48: spec.source.connector.config.listen: http source `listen` 0.0.0.0:8088 is outside pipeline.allowed.listen"),
        "{e}"
    );
    assert!(
        lines[1].contains("spec.sinks[0].connector.config.path: file sink `path` /root/.ssh/authorized_keys is outside pipeline.allowed.paths")
            && lines[1].ends_with("add its directory to pipeline.allowed.paths"),
        "{e}"
    );
    // Nothing was created on the way.
    assert!(!inside.exists());
}

/// Records which references were resolved (loaded), refusing what the
/// policy would.
struct Recording {
    resolved: std::cell::RefCell<Vec<String>>,
}

impl PluginResolver for Recording {
    fn resolve(&self, reference: &str, kind: PluginKind) -> Result<PluginInfo, String> {
        self.resolved.borrow_mut().push(reference.to_owned());
        Ok(PluginInfo::new(reference, "1").with_kind(kind))
    }

    fn permit(
        &self,
        _: &str,
        _: PluginKind,
        config: &fjord_sdk::Config,
        _: &fjord_plugin_host::Capabilities,
    ) -> Result<(), (String, String)> {
        match config.get("path") {
            Some(p) if p.starts_with("/etc") => Err(("config.path".into(), "not allowed".into())),
            _ => Ok(()),
        }
    }
}

#[test]
fn a_manifest_with_errors_loads_no_plugin_file() {
    let manifest = |path: &str| {
        format!(
            "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {{name: m}}\nspec:\n  \
             source: {{topic: in}}\n  steps:\n    - {{name: s, plugin: /opt/plugins/libp.so}}\n  \
             sinks:\n    - connector: {{plugin: file, config: {{path: '{path}'}}}}\n"
        )
    };
    let resolver = Recording {
        resolved: Default::default(),
    };
    let e = Pipeline::load("m.yaml", &manifest("/etc/passwd"), &resolver).unwrap_err();
    assert!(e.to_string().contains("config.path: not allowed"), "{e}");
    // The built-in was looked up; the library was not loaded.
    assert_eq!(*resolver.resolved.borrow(), ["file"]);

    resolver.resolved.borrow_mut().clear();
    Pipeline::load("m.yaml", &manifest("/srv/out.log"), &resolver).unwrap();
    assert_eq!(
        *resolver.resolved.borrow(),
        ["/opt/plugins/libp.so", "file"]
    );
}

/// The process's peak resident memory so far, in KiB (Linux).
fn peak_memory_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(u64::MAX)
}

/// A manifest whose step's config has `entries` (lines of YAML, block
/// style, indented by the function) after its `expr`.
fn with_config(entries: &str) -> String {
    let entries: String = entries.lines().map(|l| format!("        {l}\n")).collect();
    format!(
        "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {{name: m}}\nspec:\n  \
         source: {{topic: a}}\n  steps:\n    - name: s\n      plugin: filter\n      \
         config:\n        expr: 'true'\n{entries}  sinks: [{{topic: b}}]\n"
    )
}

/// A billion laughs: nine levels of nine aliases expand to 9^9 strings
/// (gigabytes); the parser's budget refuses the manifest, located, before
/// memory grows.
#[test]
fn an_alias_bomb_is_refused_without_expanding_it() {
    let mut entries = String::from("x0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..=8 {
        let prev = format!("*l{}", level - 1);
        let items = [prev.as_str(); 9].join(", ");
        entries.push_str(&format!("x{level}: &l{level} [{items}]\n"));
    }
    entries.push_str("bomb: *l8\n");
    let before = peak_memory_kib();
    let message = errors(&with_config(&entries));
    let grown_mib = peak_memory_kib().saturating_sub(before) / 1024;
    assert!(
        message.starts_with("web.yaml:") && message.contains("alias"),
        "{message}"
    );
    assert!(
        grown_mib < 256,
        "parsing the bomb grew memory by {grown_mib} MiB"
    );
}

/// Nesting deep enough to exhaust a recursive parser's stack is refused
/// with a message, in flow and in block style.
#[test]
fn deep_nesting_is_refused() {
    let flow = format!("deep: {}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let message = errors(&with_config(&flow));
    assert!(
        message.starts_with("web.yaml:") && message.contains("limit"),
        "{message}"
    );

    // The limit is 64 levels, the document's own included.
    let nested = |depth: usize| format!("deep: {}1{}", "[".repeat(depth), "]".repeat(depth));
    assert_eq!(errors(&with_config(&nested(58))), "(no error)");
    assert!(errors(&with_config(&nested(70))).contains("limit"));

    let mut block = String::from("deep:\n");
    for depth in 1..=5_000 {
        block.push_str(&" ".repeat(depth));
        block.push_str("- \n");
    }
    let message = errors(&with_config(&block));
    assert!(
        message.starts_with("web.yaml:") && message.contains("limit"),
        "{message}"
    );
}
