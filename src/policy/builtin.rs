//! Built-in policies: allow-all, rules and combinators.

use std::sync::Arc;

use super::{Connection, ConnectionPolicy, Decision, Matcher, PolicyError, Verdict};

/// Allows every connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

#[async_trait::async_trait]
impl ConnectionPolicy for AllowAll {
    async fn evaluate(&self, _: &Connection) -> Result<Verdict, PolicyError> {
        Ok(Verdict::allow())
    }
}

/// Decides `decision` when `matcher` matches; no decision otherwise.
///
/// Rules compose like a firewall: `FirstMatch` of rules, with `AllowAll` or
/// nothing (deny) at the end.
#[derive(Clone, Debug)]
pub struct Rule {
    matcher: Matcher,
    decision: Decision,
    custom_data: Option<String>,
}

impl Rule {
    /// Allow when `matcher` matches.
    pub fn allow_if(matcher: Matcher) -> Self {
        Self {
            matcher,
            decision: Decision::Allow,
            custom_data: None,
        }
    }

    /// Deny when `matcher` matches.
    pub fn deny_if(matcher: Matcher) -> Self {
        Self {
            matcher,
            decision: Decision::Deny,
            custom_data: None,
        }
    }

    /// Log data to attach when the rule decides.
    pub fn with_custom_data(mut self, data: impl Into<String>) -> Self {
        self.custom_data = Some(data.into());
        self
    }
}

#[async_trait::async_trait]
impl ConnectionPolicy for Rule {
    async fn evaluate(&self, connection: &Connection) -> Result<Verdict, PolicyError> {
        if self.matcher.matches(connection).await? {
            Ok(Verdict {
                decision: Some(self.decision),
                custom_data: self.custom_data.clone(),
            })
        } else {
            Ok(Verdict::none())
        }
    }
}

/// The first policy that decides wins; none deciding is no decision.
#[derive(Clone, Debug, Default)]
pub struct FirstMatch(pub Vec<Arc<dyn ConnectionPolicy>>);

#[async_trait::async_trait]
impl ConnectionPolicy for FirstMatch {
    async fn evaluate(&self, connection: &Connection) -> Result<Verdict, PolicyError> {
        for policy in &self.0 {
            let verdict = policy.evaluate(connection).await?;
            if verdict.decision.is_some() {
                return Ok(verdict);
            }
        }
        Ok(Verdict::none())
    }
}

/// Allows only when every policy allows; the first deny denies; otherwise
/// (some policy undecided) no decision.
#[derive(Clone, Debug, Default)]
pub struct AllOf(pub Vec<Arc<dyn ConnectionPolicy>>);

#[async_trait::async_trait]
impl ConnectionPolicy for AllOf {
    async fn evaluate(&self, connection: &Connection) -> Result<Verdict, PolicyError> {
        let mut undecided = self.0.is_empty();
        let mut last = Verdict::allow();
        for policy in &self.0 {
            let verdict = policy.evaluate(connection).await?;
            match verdict.decision {
                Some(Decision::Deny) => return Ok(verdict),
                Some(Decision::Allow) => last = verdict,
                None => undecided = true,
            }
        }
        Ok(if undecided { Verdict::none() } else { last })
    }
}

/// Allows when any policy allows; otherwise denies when any denied;
/// otherwise no decision.
#[derive(Clone, Debug, Default)]
pub struct AnyOf(pub Vec<Arc<dyn ConnectionPolicy>>);

#[async_trait::async_trait]
impl ConnectionPolicy for AnyOf {
    async fn evaluate(&self, connection: &Connection) -> Result<Verdict, PolicyError> {
        let mut denied = None;
        for policy in &self.0 {
            let verdict = policy.evaluate(connection).await?;
            match verdict.decision {
                Some(Decision::Allow) => return Ok(verdict),
                Some(Decision::Deny) => {
                    denied.get_or_insert(verdict);
                }
                None => {}
            }
        }
        Ok(denied.unwrap_or_default())
    }
}
