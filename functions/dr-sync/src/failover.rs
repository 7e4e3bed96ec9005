//! Failover: which side is active, with a generation number that every sync and
//! failover carries, so that a stale run can never overwrite the promoted side.
//!
//! The pointer is an SSM parameter (named by the spec) that clients read to find the
//! active workspace. A failover's steps are ordered so that a crash between any two
//! leaves a state that a re-run finishes: the sync schedule is disabled first (no sync
//! may pull into the side being promoted), jobs are paused, cancelled and unpaused, and
//! the pointer is switched last, with the generation incremented.

use serde::{Deserialize, Serialize};

use crate::spec::DrSpec;

/// The value of the active-workspace parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivePointer {
    /// The DR pair (the spec's `name`).
    pub name: String,
    /// Host of the active workspace.
    pub active_host: String,
    pub active_region: String,
    /// +1 at each failover; 1 for the first pointer.
    pub generation: u64,
    /// RFC 3339 time of the last switch.
    pub since: String,
}

impl ActivePointer {
    /// The pointer a first sync writes when none exists: the spec's primary is active.
    pub fn initial(spec: &DrSpec, now: &str) -> ActivePointer {
        ActivePointer {
            name: spec.name.clone(),
            active_host: spec.primary.host.clone(),
            active_region: spec.primary.region.clone(),
            generation: 1,
            since: now.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Last sync first, and only with a clean reconciliation.
    Planned,
    /// The primary is impaired: go now; calls to the primary are best effort.
    Forced,
}

/// Why a sync or failover is refused. The names are the Step Functions error names
/// the state machines route on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The run carries a generation older than the pointer's.
    StaleGeneration { carried: u64, current: u64 },
    /// The spec's primary is not the active side: syncing would overwrite the promoted one.
    PrimaryNotActive { active_host: String },
    /// The pointer names another DR pair.
    OtherPair { name: String },
    /// A planned failover needs a clean reconciliation.
    NotInSync {
        missing: usize,
        drifted: usize,
        failed: usize,
    },
    /// A planned failover's last sync did not finish: nothing says the sides agree.
    LastSyncFailed { error: String },
}

/// What a planned failover knows of its last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastSync<'a> {
    /// None ran (a forced failover), or its output was not passed on.
    Absent,
    /// Its report's missing, drifted and failed counts.
    Report {
        missing: usize,
        drifted: usize,
        failed: usize,
    },
    /// It failed; its error and cause, as the state machine caught them.
    Failed(&'a str),
}

impl Refusal {
    pub fn error_name(&self) -> &'static str {
        match self {
            Refusal::StaleGeneration { .. } => "DR.StaleGeneration",
            Refusal::PrimaryNotActive { .. } => "DR.PrimaryNotActive",
            Refusal::OtherPair { .. } => "DR.OtherPair",
            Refusal::NotInSync { .. } => "DR.NotInSync",
            Refusal::LastSyncFailed { .. } => "DR.LastSyncFailed",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::StaleGeneration { carried, current } => write!(
                f,
                "this run carries generation {carried}, but the active-workspace pointer is at generation {current}: a failover happened since it started"
            ),
            Refusal::PrimaryNotActive { active_host } => write!(
                f,
                "the spec's primary is not the active workspace ({active_host} is): syncing would overwrite the promoted side; run a reverse sync (failback) instead"
            ),
            Refusal::OtherPair { name } => write!(f, "the active-workspace pointer belongs to DR pair {name}"),
            Refusal::NotInSync { missing, drifted, failed } => write!(
                f,
                "a planned failover needs a clean reconciliation: {missing} missing, {drifted} drifted, {failed} failed (use mode forced to go anyway)"
            ),
            Refusal::LastSyncFailed { error } => write!(
                f,
                "a planned failover syncs once more first, and that sync failed: {} (fix it and start again, or use mode forced to go anyway)",
                lakeops_shared::validate::truncate(error, 600)
            ),
        }
    }
}

fn check_pair(pointer: &ActivePointer, spec: &DrSpec, carried: Option<u64>) -> Result<(), Refusal> {
    if pointer.name != spec.name {
        return Err(Refusal::OtherPair {
            name: pointer.name.clone(),
        });
    }
    match carried {
        Some(c) if c != pointer.generation => Err(Refusal::StaleGeneration {
            carried: c,
            current: pointer.generation,
        }),
        _ => Ok(()),
    }
}

fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// A sync pulls from the spec's primary into its secondary: allowed only while the
/// primary is active and the run's generation is current.
pub fn check_sync(
    pointer: &ActivePointer,
    spec: &DrSpec,
    carried: Option<u64>,
) -> Result<(), Refusal> {
    check_pair(pointer, spec, carried)?;
    if !same_host(&pointer.active_host, &spec.primary.host) {
        return Err(Refusal::PrimaryNotActive {
            active_host: pointer.active_host.clone(),
        });
    }
    Ok(())
}

/// What a failover decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decision {
    /// Run the steps, then write `pointer`.
    Promote { pointer: ActivePointer },
    /// A re-run after the pointer was switched: the secondary is already active at the
    /// next generation; only the idempotent steps before the switch are repeated.
    AlreadyPromoted { pointer: ActivePointer },
}

/// Decides a failover from the spec's primary to its secondary. `last_sync` is what
/// the last sync said (`Planned` needs a clean report). A re-run after the switch
/// finishes whatever its last sync did: that sync is refused once the pointer moved.
pub fn decide(
    pointer: &ActivePointer,
    spec: &DrSpec,
    mode: Mode,
    carried: Option<u64>,
    last_sync: LastSync<'_>,
    now: &str,
) -> Result<Decision, Refusal> {
    if pointer.name != spec.name {
        return Err(Refusal::OtherPair {
            name: pointer.name.clone(),
        });
    }
    if same_host(&pointer.active_host, &spec.secondary.host)
        && carried.is_none_or(|c| c + 1 == pointer.generation)
    {
        return Ok(Decision::AlreadyPromoted {
            pointer: pointer.clone(),
        });
    }
    check_sync(pointer, spec, carried)?;
    if mode == Mode::Planned {
        match last_sync {
            LastSync::Report {
                missing: 0,
                drifted: 0,
                failed: 0,
            } => {}
            LastSync::Report {
                missing,
                drifted,
                failed,
            } => {
                return Err(Refusal::NotInSync {
                    missing,
                    drifted,
                    failed,
                })
            }
            LastSync::Failed(error) => {
                return Err(Refusal::LastSyncFailed {
                    error: error.to_string(),
                })
            }
            LastSync::Absent => {
                return Err(Refusal::NotInSync {
                    missing: 0,
                    drifted: 0,
                    failed: 0,
                })
            }
        }
    }
    Ok(Decision::Promote {
        pointer: ActivePointer {
            name: spec.name.clone(),
            active_host: spec.secondary.host.clone(),
            active_region: spec.secondary.region.clone(),
            generation: pointer.generation + 1,
            since: now.into(),
        },
    })
}

impl DrSpec {
    /// The spec of the reverse sync (failback): the promoted secondary becomes the
    /// primary. Catalogs, locations and principals map back; storage credentials are
    /// not re-created on the old primary, where they already exist.
    pub fn reversed(&self) -> DrSpec {
        let mut r = self.clone();
        std::mem::swap(&mut r.primary, &mut r.secondary);
        r.catalogs = self
            .catalogs
            .iter()
            .map(|c| crate::spec::CatalogMapping {
                source: c.target_name().to_string(),
                target: Some(c.source.clone()),
                ..c.clone()
            })
            .collect();
        r.locations = self
            .locations
            .iter()
            .map(|l| crate::spec::LocationMapping {
                primary: l.secondary.clone(),
                secondary: l.primary.clone(),
            })
            .collect();
        r.principals = self
            .principals
            .iter()
            .map(|(a, b)| (b.clone(), a.clone()))
            .collect();
        r.storage_credentials.clear();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DrSpec {
        crate::spec::parse(&crate::spec::tests::sample()).unwrap()
    }

    #[test]
    fn a_sync_runs_only_from_the_active_primary_at_the_current_generation() {
        let s = spec();
        let p = ActivePointer::initial(&s, "t0");
        assert!(check_sync(&p, &s, None).is_ok());
        assert!(check_sync(&p, &s, Some(1)).is_ok());
        assert_eq!(
            check_sync(&p, &s, Some(0)).unwrap_err().error_name(),
            "DR.StaleGeneration"
        );
        let promoted = match decide(&p, &s, Mode::Forced, Some(1), LastSync::Absent, "t1").unwrap()
        {
            Decision::Promote { pointer } => pointer,
            other => panic!("{other:?}"),
        };
        assert_eq!(promoted.generation, 2);
        // The old direction is refused for good: the promoted side is never overwritten.
        assert_eq!(
            check_sync(&promoted, &s, None).unwrap_err().error_name(),
            "DR.PrimaryNotActive"
        );
        assert_eq!(
            check_sync(&promoted, &s, Some(1)).unwrap_err().error_name(),
            "DR.StaleGeneration"
        );
        // The reverse sync (failback) is allowed.
        assert!(check_sync(&promoted, &s.reversed(), Some(2)).is_ok());
    }

    #[test]
    fn a_planned_failover_needs_a_clean_reconciliation() {
        let s = spec();
        let p = ActivePointer::initial(&s, "t0");
        let refused = decide(
            &p,
            &s,
            Mode::Planned,
            Some(1),
            LastSync::Report {
                missing: 0,
                drifted: 2,
                failed: 1,
            },
            "t1",
        )
        .unwrap_err();
        assert_eq!(refused.error_name(), "DR.NotInSync");
        assert!(refused.to_string().contains("2 drifted"));
        assert!(decide(&p, &s, Mode::Planned, Some(1), LastSync::Absent, "t1").is_err());
        assert!(decide(
            &p,
            &s,
            Mode::Planned,
            Some(1),
            LastSync::Report {
                missing: 0,
                drifted: 0,
                failed: 0
            },
            "t1"
        )
        .is_ok());
    }

    #[test]
    fn a_rerun_after_the_switch_finishes_instead_of_refusing() {
        let s = spec();
        let p = ActivePointer::initial(&s, "t0");
        let Decision::Promote { pointer } =
            decide(&p, &s, Mode::Forced, Some(1), LastSync::Absent, "t1").unwrap()
        else {
            panic!()
        };
        assert!(matches!(
            decide(&pointer, &s, Mode::Forced, Some(1), LastSync::Absent, "t2").unwrap(),
            Decision::AlreadyPromoted { .. }
        ));
        // But a run from two generations ago is stale.
        let mut later = pointer.clone();
        later.generation = 5;
        later.active_host = s.secondary.host.clone();
        assert!(decide(&later, &s, Mode::Forced, Some(1), LastSync::Absent, "t3").is_err());
    }

    #[test]
    fn failback_reverses_every_mapping() {
        let s = spec();
        let r = s.reversed();
        assert_eq!(r.primary, s.secondary);
        assert_eq!(r.catalogs[1].source, "sales_dr");
        assert_eq!(r.catalogs[1].target_name(), "sales");
        assert_eq!(
            r.map_location("s3://lake-usw2/x").unwrap(),
            "s3://lake-use1/x"
        );
        assert_eq!(r.map_principal("data-eng-usw2"), "data-eng-use1");
        assert!(r.validate().is_empty(), "{}", r.validate());
        assert_eq!(
            r.reversed().catalogs,
            s.catalogs
                .iter()
                .map(|c| crate::spec::CatalogMapping {
                    target: Some(c.target_name().to_string()),
                    ..c.clone()
                })
                .collect::<Vec<_>>()
        );
    }
}

#[cfg(test)]
mod names {
    #[test]
    fn every_refusal_name_is_listed_for_the_state_machines() {
        use super::Refusal::*;
        for r in [
            StaleGeneration {
                carried: 1,
                current: 2,
            },
            PrimaryNotActive {
                active_host: "h".into(),
            },
            OtherPair { name: "x".into() },
            NotInSync {
                missing: 0,
                drifted: 1,
                failed: 0,
            },
        ] {
            assert!(crate::event::errors::REFUSALS.contains(&r.error_name()));
        }
    }
}
