//! Control routes on a portal's records: list, create, read, update, delete, restore, privacy-delete, merge, associate, properties.

use super::*;

pub(super) async fn list_objects(
    State(st): St,
    Path((id, t)): Path<(u64, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query_pairs(raw.as_deref());
    let t = match ty(&t) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let archived = match query_bool(&q, "archived") {
        Ok(a) => a,
        Err(r) => return r,
    };
    let offset = query_get(&q, "offset")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let limit = query_get(&q, "limit")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    match st.list_objects(id, t, archived) {
        Ok(v) => {
            let total = v.len();
            let page: Vec<_> = v.into_iter().skip(offset).take(limit).collect();
            json(StatusCode::OK, &json!({"total": total, "results": page}))
        }
        Err(e) => sim_err(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PropsBody {
    properties: Props,
    change_source: Option<String>,
}

pub(super) async fn create_object(
    State(st): St,
    Path((id, t)): Path<(u64, String)>,
    b: Bytes,
) -> Response {
    let (t, body) = match (ty(&t), body_or_empty::<PropsBody>(&b)) {
        (Ok(t), Ok(b)) => (t, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let source = body.change_source.unwrap_or_else(|| "CRM_UI".into());
    let r = st
        .apply(
            id,
            Change::Create {
                object_type: t,
                properties: body.properties,
            },
            &source,
        )
        .and_then(|o| st.get_object(id, t, o.object_id.unwrap_or(0)));
    match r {
        Ok(o) => json(StatusCode::CREATED, &o),
        Err(e) => sim_err(e),
    }
}

pub(super) async fn get_object(
    State(st): St,
    Path((id, t, oid)): Path<(u64, String, u64)>,
) -> Response {
    let t = match ty(&t) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match st.get_object(id, t, oid) {
        Ok(Some(o)) => json(StatusCode::OK, &o),
        Ok(None) => sim_err(SimError::NotFound { ty: t, id: oid }),
        Err(e) => sim_err(e),
    }
}

pub(super) async fn update_object(
    State(st): St,
    Path((id, t, oid)): Path<(u64, String, u64)>,
    b: Bytes,
) -> Response {
    let (t, body) = match (ty(&t), parse_body::<PropsBody>(&b)) {
        (Ok(t), Ok(b)) => (t, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let source = body.change_source.unwrap_or_else(|| "CRM_UI".into());
    let r = st.apply(
        id,
        Change::Update {
            object_type: t,
            id: oid,
            properties: body.properties,
        },
        &source,
    );
    match r {
        Ok(o) => json(
            StatusCode::OK,
            &json!({"changed": o.changed, "events": o.events, "object": st.get_object(id, t, oid).ok().flatten()}),
        ),
        Err(e) => sim_err(e),
    }
}

pub(super) async fn simple(st: &SimState, id: u64, change: Change) -> Response {
    ok(st.apply(id, change, "CRM_UI"))
}

pub(super) async fn delete_object(
    State(st): St,
    Path((id, t, oid)): Path<(u64, String, u64)>,
) -> Response {
    match ty(&t) {
        Ok(t) => {
            simple(
                &st,
                id,
                Change::Delete {
                    object_type: t,
                    id: oid,
                },
            )
            .await
        }
        Err(r) => r,
    }
}

pub(super) async fn restore_object(
    State(st): St,
    Path((id, t, oid)): Path<(u64, String, u64)>,
) -> Response {
    match ty(&t) {
        Ok(t) => {
            simple(
                &st,
                id,
                Change::Restore {
                    object_type: t,
                    id: oid,
                },
            )
            .await
        }
        Err(r) => r,
    }
}

pub(super) async fn privacy_delete(
    State(st): St,
    Path((id, t, oid)): Path<(u64, String, u64)>,
) -> Response {
    match ty(&t) {
        Ok(ObjectType::Contacts) => simple(&st, id, Change::PrivacyDelete { id: oid }).await,
        Ok(_) => bad_request("privacy deletion exists for contacts only"),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct MergeBody {
    primary_id: u64,
    merged_id: u64,
    #[serde(default)]
    new_id: Option<bool>,
}

pub(super) async fn merge(State(st): St, Path((id, t)): Path<(u64, String)>, b: Bytes) -> Response {
    let (t, m) = match (ty(&t), parse_body::<MergeBody>(&b)) {
        (Ok(t), Ok(m)) => (t, m),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    simple(
        &st,
        id,
        Change::Merge {
            object_type: t,
            primary_id: m.primary_id,
            merged_id: m.merged_id,
            new_id: m.new_id,
        },
    )
    .await
}

#[derive(Deserialize)]
struct AssocBody {
    from_type: ObjectType,
    from_id: u64,
    to_type: ObjectType,
    to_id: u64,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    remove: bool,
}

pub(super) async fn associate(State(st): St, Path(id): Path<u64>, b: Bytes) -> Response {
    let a = match parse_body::<AssocBody>(&b) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let c = if a.remove {
        Change::Dissociate {
            from_type: a.from_type,
            from_id: a.from_id,
            to_type: a.to_type,
            to_id: a.to_id,
        }
    } else {
        Change::Associate {
            from_type: a.from_type,
            from_id: a.from_id,
            to_type: a.to_type,
            to_id: a.to_id,
            primary: a.primary,
        }
    };
    simple(&st, id, c).await
}

pub(super) async fn get_associations(
    State(st): St,
    Path((id, from, oid, to)): Path<(u64, String, u64, String)>,
) -> Response {
    let (f, t) = match (ty(&from), ty(&to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match st.associations(id, f, oid, t) {
        Ok(v) => {
            let r: Vec<_> = v
                .into_iter()
                .map(|(i, p)| json!({"id": i, "primary": p}))
                .collect();
            json(StatusCode::OK, &json!({"results": r}))
        }
        Err(e) => sim_err(e),
    }
}

pub(super) async fn list_props(State(st): St, Path((id, t)): Path<(u64, String)>) -> Response {
    match ty(&t) {
        Ok(t) => ok(st.properties(id, t).map(|r| json!({"results": r}))),
        Err(r) => r,
    }
}

pub(super) async fn create_prop(
    State(st): St,
    Path((id, t)): Path<(u64, String)>,
    b: Bytes,
) -> Response {
    let (t, d) = match (ty(&t), parse_body::<PropertyDef>(&b)) {
        (Ok(t), Ok(d)) => (t, d),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let name = d.name.clone();
    match st.create_property(id, t, d) {
        Ok(()) => match st.properties(id, t) {
            Ok(all) => json(
                StatusCode::CREATED,
                &all.into_iter().find(|p| p.name == name),
            ),
            Err(e) => sim_err(e),
        },
        Err(e) => sim_err(e),
    }
}

pub(super) async fn delete_prop(
    State(st): St,
    Path((id, t, name)): Path<(u64, String, String)>,
) -> Response {
    match ty(&t) {
        Ok(t) => match st.delete_property(id, t, &name) {
            Ok(true) => json(StatusCode::OK, &json!({"deleted": name})),
            Ok(false) => hs_error(
                StatusCode::NOT_FOUND,
                "OBJECT_NOT_FOUND",
                format!("property {name} not found"),
            ),
            Err(e) => sim_err(e),
        },
        Err(r) => r,
    }
}
