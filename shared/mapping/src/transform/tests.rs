use super::*;
use proptest::prelude::*;

fn one(t: &Transform, s: &str) -> Output {
    t.apply(&[Some(s)], Lookups::default())
}

fn owners() -> Owners {
    let mut o = Owners::new();
    o.insert("7001", Some("ada@example.com"), Some(" Ada "), Some("King"));
    o.insert("7002", None, None, None);
    o
}

const ALL: fn() -> Vec<Transform> = || {
    vec![
        Transform::String,
        Transform::Enumeration {
            values: vec!["customer".into(), "lead".into()],
        },
        Transform::Enumeration { values: vec![] },
        Transform::Integer,
        Transform::Count,
        Transform::Decimal,
        Transform::Probability,
        Transform::Cents,
        Transform::Date,
        Transform::Datetime,
        Transform::Boolean,
        Transform::Concat {
            separator: " ".into(),
        },
        Transform::OwnerEmail,
        Transform::OwnerName,
        Transform::PipelineLabel,
        Transform::StageLabel,
        Transform::Email,
    ]
};

fn pipelines() -> Pipelines {
    let mut p = Pipelines::new();
    p.insert(
        "default",
        "Sales Pipeline",
        &[
            ("closedwon", "Closed Won"),
            ("qualifiedtobuy", "Qualified To Buy"),
        ],
    );
    p
}

fn with_owners(o: &Owners) -> Lookups<'_> {
    Lookups {
        owners: Some(o),
        pipelines: None,
    }
}

#[test]
fn pipeline_and_stage_ids_resolve_to_labels() {
    let p = pipelines();
    let l = Lookups {
        owners: None,
        pipelines: Some(&p),
    };
    assert_eq!(
        Transform::PipelineLabel.apply(&[Some(" default ")], l),
        Output::ok("Sales Pipeline".into())
    );
    assert_eq!(
        Transform::StageLabel.apply(&[Some("closedwon")], l),
        Output::ok("Closed Won".into())
    );
    assert_eq!(
        Transform::StageLabel.apply(&[Some("gone")], l).error,
        Some(ConvError::UnknownPipelineValue)
    );
    assert_eq!(
        Transform::PipelineLabel
            .apply(&[Some("default")], Lookups::default())
            .error,
        Some(ConvError::PipelinesUnavailable)
    );
    assert!(Transform::StageLabel.needs_pipelines());
    assert!(!Transform::OwnerEmail.needs_pipelines());
}

#[test]
fn empty_and_missing_inputs_are_null_without_error_for_every_transform() {
    for t in ALL() {
        for input in [None, Some(""), Some("   "), Some("\t\n")] {
            let (o, p) = (owners(), pipelines());
            let out = t.apply(
                &[input],
                Lookups {
                    owners: Some(&o),
                    pipelines: Some(&p),
                },
            );
            assert_eq!(out, Output::ok(Value::Null), "{} {input:?}", t.name());
        }
        assert_eq!(
            t.apply(&[], Lookups::default()),
            Output::ok(Value::Null),
            "{}",
            t.name()
        );
    }
}

#[test]
fn string_trims() {
    assert_eq!(
        one(&Transform::String, "  Acme "),
        Output::ok("Acme".into())
    );
}

#[test]
fn enumeration_normalises_and_keeps_unknown_values_with_a_report() {
    let t = Transform::Enumeration {
        values: vec!["customer".into(), "salesqualifiedlead".into()],
    };
    assert_eq!(one(&t, " Customer "), Output::ok("customer".into()));
    assert_eq!(
        one(&t, "SALESQUALIFIEDLEAD"),
        Output::ok("salesqualifiedlead".into())
    );
    let unknown = one(&t, " partner ");
    assert_eq!(unknown.value, Value::String("partner".into()));
    assert_eq!(unknown.error, Some(ConvError::UnknownEnumValue));
    assert!(!unknown.error.unwrap().to_string().contains("partner"));
    let open = Transform::Enumeration { values: vec![] };
    assert_eq!(one(&open, " anything "), Output::ok("anything".into()));
}

#[test]
fn integers() {
    assert_eq!(one(&Transform::Integer, "-42"), Output::ok((-42).into()));
    assert_eq!(one(&Transform::Integer, "250.0"), Output::ok(250.into()));
    assert_eq!(
        one(&Transform::Integer, "2.5").error,
        Some(ConvError::NotAnInteger)
    );
    assert_eq!(
        one(&Transform::Integer, "abc").error,
        Some(ConvError::NotADecimal)
    );
    assert_eq!(
        one(&Transform::Integer, "1,000").error,
        Some(ConvError::NotADecimal)
    );
    assert!(matches!(
        one(&Transform::Integer, "9223372036854775808").error,
        Some(ConvError::OutOfRange(_))
    ));
    assert_eq!(
        one(&Transform::Count, "-1").error,
        Some(ConvError::Negative)
    );
}

#[test]
fn decimals_and_money_are_exact() {
    assert_eq!(
        one(&Transform::Decimal, "1000.50"),
        Output::ok("1000.5".into())
    );
    assert_eq!(
        one(&Transform::Decimal, "0.1"),
        Output::ok("0.1".into()),
        "no float"
    );
    assert_eq!(
        one(&Transform::Decimal, "1,000.50").error,
        Some(ConvError::NotADecimal)
    );
    assert_eq!(
        one(&Transform::Cents, "1000.50"),
        Output::ok(100_050.into())
    );
    assert_eq!(one(&Transform::Cents, "0.015"), Output::ok(2.into()));
    assert_eq!(
        one(&Transform::Cents, "1,000.50").error,
        Some(ConvError::NotADecimal)
    );
    assert!(matches!(
        one(&Transform::Cents, "99999999999999999999").error,
        Some(ConvError::OutOfRange(_))
    ));
    assert!(matches!(
        one(&Transform::Probability, "1.5").error,
        Some(ConvError::OutOfRange(_))
    ));
    assert_eq!(
        one(&Transform::Probability, "0.50"),
        Output::ok(serde_json::json!(0.5))
    );
    assert_eq!(
        one(&Transform::Probability, "1.0"),
        Output::ok(serde_json::json!(1))
    );
    assert!(one(&Transform::Probability, "0.2").value.is_number());
}

#[test]
fn dates_and_datetimes() {
    assert_eq!(
        one(&Transform::Date, "2024-06-30"),
        Output::ok("2024-06-30".into())
    );
    assert_eq!(
        one(&Transform::Date, "2024-06-30T23:59:59Z"),
        Output::ok("2024-06-30".into())
    );
    assert_eq!(
        one(&Transform::Date, "1719792000000"),
        Output::ok("2024-07-01".into())
    );
    assert_eq!(
        one(&Transform::Datetime, "2024-06-30"),
        Output::ok("2024-06-30T00:00:00.000Z".into())
    );
    for bad in ["2024-13-01", "2024-02-30", "yesterday", "30/06/2024"] {
        assert_eq!(
            one(&Transform::Date, bad).error,
            Some(ConvError::NotATimestamp),
            "{bad}"
        );
    }
    for out_of_range in ["99999999999999999", "-99999999999999999", "+10000-01-01"] {
        assert!(
            one(&Transform::Datetime, out_of_range).error.is_some(),
            "{out_of_range}"
        );
    }
}

#[test]
fn booleans() {
    for (s, b) in [
        ("true", true),
        ("FALSE", false),
        (" yes ", true),
        ("0", false),
    ] {
        assert_eq!(one(&Transform::Boolean, s), Output::ok(b.into()), "{s}");
    }
    assert_eq!(
        one(&Transform::Boolean, "maybe").error,
        Some(ConvError::NotABoolean)
    );
}

#[test]
fn concat_joins_non_empty_trimmed_parts() {
    let t = Transform::Concat {
        separator: " ".into(),
    };
    assert_eq!(
        t.apply(&[Some(" Ada "), Some("Lovelace")], Lookups::default()),
        Output::ok("Ada Lovelace".into())
    );
    assert_eq!(
        t.apply(&[None, Some(" Lovelace ")], Lookups::default()),
        Output::ok("Lovelace".into())
    );
    assert_eq!(
        t.apply(&[Some(" "), Some("")], Lookups::default()),
        Output::ok(Value::Null)
    );
    let dash = Transform::Concat {
        separator: " - ".into(),
    };
    assert_eq!(
        dash.apply(&[Some("a"), Some("b"), Some("c")], Lookups::default()),
        Output::ok("a - b - c".into())
    );
}

#[test]
fn owners_resolve_to_email_and_name() {
    let o = owners();
    assert_eq!(
        Transform::OwnerEmail.apply(&[Some("7001")], with_owners(&o)),
        Output::ok("ada@example.com".into())
    );
    assert_eq!(
        Transform::OwnerName.apply(&[Some(" 7001 ")], with_owners(&o)),
        Output::ok("Ada King".into())
    );
    assert_eq!(
        Transform::OwnerEmail.apply(&[Some("7002")], with_owners(&o)),
        Output::ok(Value::Null)
    );
    assert_eq!(
        Transform::OwnerEmail
            .apply(&[Some("9999")], with_owners(&o))
            .error,
        Some(ConvError::UnknownOwner)
    );
    assert_eq!(
        Transform::OwnerEmail
            .apply(&[Some("7001")], Lookups::default())
            .error,
        Some(ConvError::OwnersUnavailable)
    );
    assert!(!format!("{o:?}").contains("ada@example.com"));
}

#[test]
fn transforms_serialize_with_a_type_tag() {
    for t in ALL() {
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["type"], t.name());
        let back: Transform = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
    }
    let c: Transform = serde_json::from_str(r#"{"type":"concat"}"#).unwrap();
    assert_eq!(
        c,
        Transform::Concat {
            separator: " ".into()
        }
    );
    assert!(serde_json::from_str::<Transform>(r#"{"type":"float"}"#).is_err());
}

fn def(name: &str, prop_type: &str, field_type: &str) -> hubsync_hubspot::PropertyDefinition {
    hubsync_hubspot::PropertyDefinition {
        name: name.into(),
        label: String::new(),
        prop_type: prop_type.into(),
        field_type: field_type.into(),
        options: Vec::new(),
        referenced_object_type: None,
    }
}

#[test]
fn fits_matches_hubspot_property_types() {
    let fits =
        |t: Transform, prop_type: &str, field_type: &str| t.fits(&def("x", prop_type, field_type));
    assert!(fits(Transform::Cents, "number", "number"));
    assert!(!fits(Transform::Cents, "string", "text"));
    assert!(!fits(Transform::Integer, "datetime", "date"));
    assert!(fits(Transform::Date, "datetime", "date"));
    assert!(!fits(Transform::Datetime, "number", "number"));
    assert!(fits(Transform::Boolean, "bool", "booleancheckbox"));
    assert!(fits(Transform::Boolean, "enumeration", "booleancheckbox"));
    assert!(!fits(Transform::Boolean, "enumeration", "select"));
    assert!(!fits(
        Transform::Enumeration { values: vec![] },
        "string",
        "text"
    ));
    assert!(Transform::OwnerEmail.fits(&def("hubspot_owner_id", "enumeration", "select")));
    assert!(!fits(Transform::OwnerEmail, "enumeration", "select"));
    assert!(fits(Transform::String, "number", "number"));
    assert!(Transform::PipelineLabel.fits(&def("pipeline", "enumeration", "select")));
    assert!(!Transform::PipelineLabel.fits(&def("dealstage", "enumeration", "radio")));
    assert!(Transform::StageLabel.fits(&def("dealstage", "enumeration", "radio")));
    assert!(!Transform::StageLabel.fits(&def("industry", "enumeration", "select")));
}

proptest! {
    #[test]
    fn no_transform_panics_on_arbitrary_strings(
        a in any::<String>(),
        b in proptest::option::of(any::<String>()),
    ) {
        let o = owners();
        for t in ALL() {
            let out = t.apply(&[Some(a.as_str()), b.as_deref()], with_owners(&o));
            // An error never carries the value.
            if let Some(e) = &out.error {
                if a.trim().len() >= 8 {
                    prop_assert!(!e.to_string().contains(a.trim()));
                }
                // Only an unknown enum value keeps a value alongside its error.
                if *e != ConvError::UnknownEnumValue {
                    prop_assert_eq!(&out.value, &Value::Null);
                }
            }
        }
    }

    #[test]
    fn integers_round_trip(n in any::<i64>()) {
        prop_assert_eq!(one(&Transform::Integer, &n.to_string()), Output::ok(n.into()));
    }

    #[test]
    fn decimals_round_trip(mantissa in any::<i64>(), scale in 0u32..=10) {
        let d = Decimal::new(mantissa, scale);
        let out = one(&Transform::Decimal, &d.to_string());
        prop_assert_eq!(out, Output::ok(d.normalize().to_string().into()));
    }

    #[test]
    fn cents_round_trip(cents in -9_000_000_000_000_000i64..9_000_000_000_000_000i64) {
        let amount = Decimal::new(cents, 2);
        prop_assert_eq!(one(&Transform::Cents, &amount.to_string()), Output::ok(cents.into()));
    }

    #[test]
    fn dates_round_trip(days in 0i64..3_000_000) {
        let d = NaiveDate::from_ymd_opt(1, 1, 1).unwrap() + chrono::Duration::days(days);
        prop_assume!(d.format("%Y").to_string().len() == 4);
        let s = d.format("%Y-%m-%d").to_string();
        prop_assert_eq!(one(&Transform::Date, &s), Output::ok(s.clone().into()));
    }

    #[test]
    fn datetimes_round_trip(ms in -62_135_596_800_000i64..253_402_300_799_999i64) {
        let t = crate::values::Timestamp::from_epoch_ms(ms).unwrap();
        let s = t.to_rfc3339();
        prop_assert_eq!(one(&Transform::Datetime, &s), Output::ok(s.clone().into()));
        prop_assert_eq!(one(&Transform::Datetime, &ms.to_string()), Output::ok(s.into()));
    }

    #[test]
    fn enumeration_accepts_every_known_value_in_any_case(
        values in proptest::collection::vec("[a-z_]{1,12}", 1..6),
        pick in any::<proptest::sample::Index>(),
    ) {
        let t = Transform::Enumeration { values: values.clone() };
        let v = pick.get(&values);
        let out = one(&t, &format!("  {}  ", v.to_ascii_uppercase()));
        prop_assert!(out.error.is_none());
        let got = out.value.as_str().unwrap().to_owned();
        prop_assert!(got.eq_ignore_ascii_case(v));
    }
}
