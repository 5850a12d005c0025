//! The admin API in `template.yaml`: IAM authorization on every `/v1/`
//! route and on nothing HubSpot calls, the function answering only the
//! application's role, least-privilege access, and the managed policy the
//! application's role gets.

use serde_json::{json, Value};

use super::template::{functions, get_att, resources, strings, template};

fn http_events(f: &Value) -> Vec<(String, String, Value)> {
    f["Properties"]["Events"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, e)| e["Type"] == "HttpApi")
        .map(|(_, e)| {
            let p = &e["Properties"];
            (
                p["Method"].as_str().unwrap_or_default().to_owned(),
                p["Path"].as_str().unwrap_or_default().to_owned(),
                p["Auth"].clone(),
            )
        })
        .collect()
}

#[test]
fn every_v1_route_is_iam_authorized_and_no_hubspot_route_is() {
    let t = template();
    assert_eq!(
        t["Resources"]["HttpApi"]["Properties"]["Auth"]["EnableIamAuthorizer"],
        true
    );
    let mut v1 = 0;
    for (id, f) in functions(&t) {
        for (method, path, auth) in http_events(f) {
            if path.starts_with("/v1/") {
                assert_eq!(id, "AdminApiFunction", "{method} {path}");
                assert_eq!(auth["Authorizer"], "AWS_IAM", "{method} {path}");
                v1 += 1;
            } else {
                assert!(
                    auth.is_null(),
                    "{method} {path}: HubSpot and browsers call it without AWS credentials"
                );
            }
        }
    }
    assert_eq!(v1, 1, "one proxy route carries the admin API");
}

#[test]
fn the_admin_function_answers_only_the_application_role() {
    let t = template();
    let f = &resources(&t)["AdminApiFunction"];
    let vars = &f["Properties"]["Environment"]["Variables"];
    assert_eq!(
        vars[admin_api::settings::CALLERS_VAR],
        json!({"Ref": "ApplicationRoleArn"})
    );
    let param = &t["Parameters"]["ApplicationRoleArn"];
    assert!(param["Default"].is_null(), "the role must be given");
    assert!(param["AllowedPattern"].as_str().unwrap().contains(":role/"));
}

#[test]
fn the_admin_function_reaches_only_what_its_operations_use() {
    let t = template();
    let f = &resources(&t)["AdminApiFunction"];
    let statements = f["Properties"]["Policies"][0]["Statement"]
        .as_array()
        .expect("an inline policy");
    for s in statements {
        let actions = strings(&s["Action"]);
        let resource = s["Resource"].to_string();
        if resource.contains("RecordsTable") {
            assert!(
                actions.iter().all(|a| matches!(
                    *a,
                    "dynamodb:GetItem" | "dynamodb:Query" | "dynamodb:DeleteItem"
                )),
                "records: read and purge only, never write: {actions:?}"
            );
        }
        if get_att(&s["Resource"]).is_some_and(|(r, _)| r == "ControlTable") {
            let keys = strings(&s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
            assert!(
                !keys.is_empty(),
                "the Control table is reached by key prefix"
            );
            for forbidden in ["OAUTH_STATE#*", "OAUTH_LINK#*", "SYNC#*", "OWNERS#*"] {
                assert!(
                    !keys.contains(&forbidden),
                    "{forbidden} is not the admin API's"
                );
            }
        }
        assert!(
            !actions.iter().any(|a| a.ends_with(":*") || *a == "*"),
            "{actions:?}"
        );
        assert!(!actions.contains(&"dynamodb:Scan"), "no request path scans");
    }
}

#[test]
fn the_application_policy_grants_the_admin_api_and_read_only_records() {
    let t = template();
    let p = &resources(&t)["ApplicationAccessPolicy"];
    assert_eq!(p["Type"], "AWS::IAM::ManagedPolicy");
    let statements = p["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let mut invoke = false;
    for s in statements {
        for a in strings(&s["Action"]) {
            match a {
                "execute-api:Invoke" => {
                    let r = s["Resource"].to_string();
                    assert!(r.contains("/*/*/v1/*"), "only the /v1 routes: {r}");
                    invoke = true;
                }
                "dynamodb:GetItem"
                | "dynamodb:BatchGetItem"
                | "dynamodb:Query"
                | "dynamodb:DescribeTable" => {
                    assert_eq!(get_att(&s["Resource"]), Some(("RecordsTable", "Arn")));
                }
                other => panic!("the application's policy grants {other}"),
            }
        }
    }
    assert!(invoke);
    assert_eq!(
        t["Outputs"]["ApplicationAccessPolicyArn"]["Value"],
        json!({"Ref": "ApplicationAccessPolicy"})
    );
}
