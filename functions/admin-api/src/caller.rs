//! Who may call the API. API Gateway authorizes every `/v1/` route with
//! IAM (SigV4; the caller needs `execute-api:Invoke`, which the template's
//! managed policy grants the application's role) and hands the function the
//! authenticated principal (`requestContext.authorizer.iam.userArn`). The
//! function checks that principal again against the roles it was
//! configured with, so a policy granted too widely elsewhere in the account
//! still does not open the API.

/// An IAM role allowed to call the API.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Role {
    partition: String,
    account: String,
    /// The role's name (the last path segment).
    name: String,
    /// The full ARN as configured.
    arn: String,
}

impl Role {
    /// `arn:{partition}:iam::{account}:role/{path/}{name}`.
    fn parse(arn: &str) -> Option<Self> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let name = resource.strip_prefix("role/")?.rsplit('/').next()?;
        let ok = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
        (ok(partition)
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && ok(name))
        .then(|| Self {
            partition: partition.to_owned(),
            account: account.to_owned(),
            name: name.to_owned(),
            arn: arn.to_owned(),
        })
    }

    /// The role itself, or a session of it
    /// (`arn:{partition}:sts::{account}:assumed-role/{name}/{session}`).
    fn admits(&self, caller: &str) -> bool {
        if caller == self.arn {
            return true;
        }
        let prefix = format!(
            "arn:{}:sts::{}:assumed-role/{}/",
            self.partition, self.account, self.name
        );
        caller
            .strip_prefix(&prefix)
            .is_some_and(|session| !session.is_empty() && !session.contains('/'))
    }
}

/// The principals allowed to call the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerPolicy {
    roles: Vec<Role>,
}

/// Why a caller was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request carried no IAM identity (the route is not behind IAM
    /// authorization).
    Unauthenticated,
    /// An identity that is not one of the allowed roles.
    NotAllowed,
}

impl CallerPolicy {
    /// From role ARNs separated by commas or spaces; every one must be a
    /// role ARN and at least one must be given.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut roles = Vec::new();
        for arn in raw.split([',', ' ', '\n']).filter(|s| !s.is_empty()) {
            roles.push(Role::parse(arn).ok_or_else(|| {
                format!("{arn:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/Name)")
            })?);
        }
        if roles.is_empty() {
            return Err("no role ARN given".into());
        }
        Ok(Self { roles })
    }

    /// Checks the principal API Gateway authenticated.
    pub fn check(&self, caller: Option<&str>) -> Result<(), Refusal> {
        let caller = caller
            .filter(|c| !c.is_empty())
            .ok_or(Refusal::Unauthenticated)?;
        if self.roles.iter().any(|r| r.admits(caller)) {
            Ok(())
        } else {
            Err(Refusal::NotAllowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_admits_itself_and_its_sessions_only() {
        let p = CallerPolicy::parse("arn:aws:iam::123456789012:role/app/AppBackend").unwrap();
        assert_eq!(
            p.check(Some(
                "arn:aws:sts::123456789012:assumed-role/AppBackend/i-0abc"
            )),
            Ok(())
        );
        assert_eq!(
            p.check(Some("arn:aws:iam::123456789012:role/app/AppBackend")),
            Ok(())
        );
        for other in [
            "arn:aws:sts::123456789012:assumed-role/AppBackendX/s",
            "arn:aws:sts::123456789012:assumed-role/Other/s",
            "arn:aws:sts::999999999999:assumed-role/AppBackend/s",
            "arn:aws-cn:sts::123456789012:assumed-role/AppBackend/s",
            "arn:aws:sts::123456789012:assumed-role/AppBackend/",
            "arn:aws:sts::123456789012:assumed-role/AppBackend/a/b",
            "arn:aws:iam::123456789012:user/AppBackend",
        ] {
            assert_eq!(p.check(Some(other)), Err(Refusal::NotAllowed), "{other}");
        }
        assert_eq!(p.check(None), Err(Refusal::Unauthenticated));
        assert_eq!(p.check(Some("")), Err(Refusal::Unauthenticated));
    }

    #[test]
    fn the_policy_accepts_only_role_arns() {
        assert!(CallerPolicy::parse("").is_err());
        assert!(CallerPolicy::parse("arn:aws:iam::123456789012:user/bob").is_err());
        assert!(CallerPolicy::parse("arn:aws:iam::12345:role/x").is_err());
        assert!(CallerPolicy::parse("*").is_err());
        let two = CallerPolicy::parse(
            "arn:aws:iam::123456789012:role/A, arn:aws:iam::123456789012:role/B",
        )
        .unwrap();
        assert_eq!(
            two.check(Some("arn:aws:sts::123456789012:assumed-role/B/s")),
            Ok(())
        );
    }
}
