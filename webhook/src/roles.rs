//! The tenant role matrix as data: who may create and who may decide PromotionRequests.
//!
//! Group naming convention (override per tenant with `tenants:` in the configuration):
//!
//! | role | group | may create in tenant | may decide in tenant |
//! |---|---|---|---|
//! | DevOps of tenant `T` (namespace) | `apim:T:devops` | yes | no |
//! | CPI of tenant `T` | `apim:T:cpi` | yes | yes (never their own request) |
//! | CPI admin | `apim:cpi-admin` | any tenant | any tenant (never their own request) |
//! | GitOps (Argo CD) | `apim:gitops` | any tenant | never |
//! | service accounts | `system:serviceaccount:*` | any tenant | never |
//! | cluster admins | `system:masters` (`requestCreatorGroups`) | any tenant | no |

use crate::config::Config;

/// An authenticated user as the API server describes it in `userInfo`.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// `userInfo.username`.
    pub username: &'a str,
    /// `userInfo.groups`.
    pub groups: &'a [String],
}

impl Principal<'_> {
    fn in_any(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }
    fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Why a principal may not decide a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideRefusal {
    /// Service accounts and GitOps identities never decide.
    ServiceAccount,
    /// Not CPI of the tenant nor CPI admin.
    NotApprover {
        /// The groups that would allow it.
        allowed_groups: Vec<String>,
    },
}

/// The role matrix, built once from the configuration.
#[derive(Debug, Clone)]
pub struct RoleMatrix {
    cfg: Config,
}

impl RoleMatrix {
    /// Builds the matrix from the configuration.
    pub fn new(cfg: &Config) -> Self {
        Self { cfg: cfg.clone() }
    }

    /// Whether the principal is a service account or a GitOps identity.
    pub fn is_service_account(&self, p: Principal<'_>) -> bool {
        self.cfg
            .service_account_prefixes
            .iter()
            .any(|prefix| !prefix.is_empty() && p.username.starts_with(prefix.as_str()))
            || p.in_any(&self.cfg.service_account_groups)
    }

    fn tenant_devops(&self, p: Principal<'_>, tenant: &str) -> bool {
        match self.cfg.tenants.get(tenant) {
            Some(t) => p.in_any(&t.devops),
            None => p.in_group(&self.cfg.devops_group_pattern.replace("{tenant}", tenant)),
        }
    }

    fn tenant_cpi(&self, p: Principal<'_>, tenant: &str) -> bool {
        match self.cfg.tenants.get(tenant) {
            Some(t) => p.in_any(&t.cpi),
            None => p.in_group(&self.cfg.cpi_group_pattern.replace("{tenant}", tenant)),
        }
    }

    /// The groups that allow deciding the tenant's requests (for messages).
    pub fn approver_groups(&self, tenant: &str) -> Vec<String> {
        let mut groups = match self.cfg.tenants.get(tenant) {
            Some(t) => t.cpi.clone(),
            None => vec![self.cfg.cpi_group_pattern.replace("{tenant}", tenant)],
        };
        groups.extend(self.cfg.cpi_admin.iter().cloned());
        groups
    }

    /// The groups that allow creating requests in the tenant (for messages).
    pub fn creator_groups(&self, tenant: &str) -> Vec<String> {
        let mut groups = match self.cfg.tenants.get(tenant) {
            Some(t) => t.devops.iter().chain(&t.cpi).cloned().collect(),
            None => vec![
                self.cfg.devops_group_pattern.replace("{tenant}", tenant),
                self.cfg.cpi_group_pattern.replace("{tenant}", tenant),
            ],
        };
        groups.extend(self.cfg.cpi_admin.iter().cloned());
        groups.extend(self.cfg.service_account_groups.iter().cloned());
        groups.extend(self.cfg.request_creator_groups.iter().cloned());
        groups
    }

    /// May the principal create a PromotionRequest in the tenant's namespace?
    pub fn may_request(&self, p: Principal<'_>, tenant: &str) -> bool {
        self.tenant_devops(p, tenant)
            || self.tenant_cpi(p, tenant)
            || p.in_any(&self.cfg.cpi_admin)
            || self.is_service_account(p)
            || p.in_any(&self.cfg.request_creator_groups)
    }

    /// May the principal decide (approve or reject) a request of the tenant? The
    /// anti-self-approval rule is separate: it needs the request's requester.
    pub fn may_decide(&self, p: Principal<'_>, tenant: &str) -> Result<(), DecideRefusal> {
        if self.is_service_account(p) {
            return Err(DecideRefusal::ServiceAccount);
        }
        if self.tenant_cpi(p, tenant) || p.in_any(&self.cfg.cpi_admin) {
            return Ok(());
        }
        Err(DecideRefusal::NotApprover {
            allowed_groups: self.approver_groups(tenant),
        })
    }

    /// Is the principal the operator (the only writer of `status`)?
    pub fn is_operator(&self, p: Principal<'_>) -> bool {
        self.cfg.operator.usernames.iter().any(|u| u == p.username)
            || p.in_any(&self.cfg.operator.groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| (*s).to_owned()).collect()
    }

    const FIN: &str = "tenant-finance";

    #[test]
    fn lab_users_follow_the_convention() {
        let m = RoleMatrix::new(&Config::default());
        let auth = "system:authenticated";
        let devops = groups(&["apim:tenant-finance:devops", auth]);
        let cpi = groups(&["apim:tenant-finance:cpi", auth]);
        let retail_cpi = groups(&["apim:tenant-retail:cpi", auth]);
        let admin = groups(&["apim:cpi-admin", auth]);
        let argocd = groups(&["apim:gitops", auth]);
        let nobody = groups(&[auth]);
        let p = |u, g| Principal {
            username: u,
            groups: g,
        };

        assert!(m.may_request(p("finance-devops", &devops), FIN));
        assert!(m.may_decide(p("finance-devops", &devops), FIN).is_err());

        assert!(m.may_decide(p("finance-cpi", &cpi), FIN).is_ok());
        assert!(m.may_decide(p("retail-cpi", &retail_cpi), FIN).is_err());
        assert!(!m.may_request(p("retail-cpi", &retail_cpi), FIN));

        assert!(m.may_decide(p("cpi-admin", &admin), FIN).is_ok());
        assert!(
            m.may_decide(p("cpi-admin", &admin), "tenant-retail")
                .is_ok()
        );

        assert!(m.may_request(p("argocd", &argocd), FIN));
        assert_eq!(
            m.may_decide(p("argocd", &argocd), FIN),
            Err(DecideRefusal::ServiceAccount)
        );

        let sa = "system:serviceaccount:tenant-finance:deployer";
        // A service account in a CPI group still never decides.
        assert_eq!(
            m.may_decide(p(sa, &cpi), FIN),
            Err(DecideRefusal::ServiceAccount)
        );
        assert!(m.may_request(p(sa, &nobody), FIN));

        assert!(!m.may_request(p("stranger", &nobody), FIN));
        let masters = groups(&["system:masters"]);
        assert!(m.may_request(p("admin", &masters), FIN));
        assert!(m.may_decide(p("admin", &masters), FIN).is_err());
    }

    #[test]
    fn explicit_tenant_groups_replace_the_convention() {
        let cfg = Config::from_yaml(
            "tenants: {tenant-finance: {devops: [fin-dev], cpi: [fin-approvers]}}",
            "t",
        )
        .unwrap();
        let m = RoleMatrix::new(&cfg);
        let conv = groups(&["apim:tenant-finance:cpi"]);
        let explicit = groups(&["fin-approvers"]);
        let p = |g| Principal {
            username: "u",
            groups: g,
        };
        assert!(m.may_decide(p(&conv), FIN).is_err());
        assert!(m.may_decide(p(&explicit), FIN).is_ok());
        let fin_dev = groups(&["fin-dev"]);
        assert!(m.may_request(p(&fin_dev), FIN));
        // Other tenants still use the convention.
        let retail_cpi = groups(&["apim:tenant-retail:cpi"]);
        assert!(m.may_decide(p(&retail_cpi), "tenant-retail").is_ok());
    }

    #[test]
    fn operator_identity() {
        let m = RoleMatrix::new(&Config::default());
        let none: Vec<String> = vec![];
        let sa_group = groups(&["system:serviceaccounts:apim-system"]);
        assert!(m.is_operator(Principal {
            username: "apim-operator",
            groups: &none
        }));
        assert!(m.is_operator(Principal {
            username: "system:serviceaccount:apim-system:whatever",
            groups: &sa_group
        }));
        assert!(!m.is_operator(Principal {
            username: "finance-cpi",
            groups: &none
        }));
    }
}
