//! `docs/RECORDS.md` documents every attribute hubsync can write: the
//! store's own, the type tag, every default field of every type (with its
//! HubSpot source), and every transform's stored form.

use hubsync_hubspot::ObjectType;
use hubsync_mapping::{MappingConfig, Transform, RECORD_TYPE_FIELD};
use hubsync_store::model::attr;

fn doc() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/RECORDS.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The section of one object type: from its heading to the next heading.
fn section(doc: &str, t: ObjectType) -> &str {
    let heading = format!("### {}", t.as_api_path());
    let start = doc
        .find(&heading)
        .unwrap_or_else(|| panic!("RECORDS.md has no {heading:?} section"));
    let rest = &doc[start + heading.len()..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn every_attribute_the_store_writes_is_documented() {
    let doc = doc();
    for name in attr::RESERVED.iter().chain([&RECORD_TYPE_FIELD]) {
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "RECORDS.md does not document `{name}`"
        );
    }
}

#[test]
fn every_default_field_is_documented_with_its_source_and_type() {
    let doc = doc();
    let defaults = MappingConfig::default();
    for t in ObjectType::ALL {
        let section = section(&doc, t);
        for rule in &defaults.object(t).rules {
            let row = section
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", rule.target)))
                .unwrap_or_else(|| panic!("RECORDS.md's {t} section lacks `{}`", rule.target));
            assert!(
                row.contains(&format!("| {} |", rule.transform.name())),
                "{t}.{}: documented type differs from `{}`: {row}",
                rule.target,
                rule.transform.name()
            );
            for source in &rule.source {
                assert!(
                    row.contains(&format!("`{source}`")),
                    "{t}.{}: source `{source}` not documented: {row}",
                    rule.target
                );
            }
        }
        for a in &defaults.object(t).associations {
            assert!(
                section.contains(&format!("`{}`", a.target)),
                "{t}.{}",
                a.target
            );
        }
    }
}

#[test]
fn every_transform_has_its_stored_form_documented() {
    let doc = doc();
    let all = [
        Transform::String,
        Transform::Enumeration { values: Vec::new() },
        Transform::Email,
        Transform::Concat {
            separator: " ".into(),
        },
        Transform::Integer,
        Transform::Count,
        Transform::Decimal,
        Transform::Probability,
        Transform::Cents,
        Transform::Date,
        Transform::Datetime,
        Transform::Boolean,
        Transform::OwnerEmail,
        Transform::OwnerName,
        Transform::PipelineLabel,
        Transform::StageLabel,
    ];
    for tr in all {
        assert!(
            doc.contains(&format!("| `{}` |", tr.name())),
            "RECORDS.md does not say how `{}` values are stored",
            tr.name()
        );
    }
}

#[test]
fn a_mapping_config_cannot_target_an_attribute_the_store_owns() {
    for name in attr::RESERVED.iter().chain([&RECORD_TYPE_FIELD]) {
        assert!(
            hubsync_mapping::config::RESERVED_TARGETS.contains(name),
            "`{name}` is the store's but a mapping rule could target it"
        );
    }
}
