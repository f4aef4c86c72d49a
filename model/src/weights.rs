//! The one rule that splits traffic between the members of a match: Mappings
//! of one namespace with the same match, TCPMappings of one namespace with
//! the same port and server names.
//!
//! - Members are taken oldest first. An explicit `weight` is a percentage,
//!   taken as given while the running total stays within 100; a weight that
//!   takes it past 100 is refused (the older members keep their share).
//! - Members without a weight share what is left equally. When it does not
//!   divide, the oldest of them get one percent more each (largest
//!   remainder), so the shares add up to exactly 100 and explicit weights
//!   keep their exact meaning.
//! - Envoy's weights are relative and it routes nothing when all are 0, so
//!   when every share is 0 the oldest member that has a share takes 100.

/// One member's part of the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// Percent of the traffic (0 is a valid share: attached, but no traffic).
    Percent(u32),
    /// `weight` takes the members' total past 100; the older members already
    /// had `total`. The member gets no traffic and its verdict says why.
    Refused { weight: u32, total: u32 },
}

/// The shares of members whose `weight` fields are `weights`, oldest first;
/// one share per member, in the same order.
pub fn split(weights: &[Option<u32>]) -> Vec<Share> {
    let mut total = 0u32;
    let mut shares: Vec<Option<Share>> = Vec::with_capacity(weights.len());
    for weight in weights {
        shares.push(match *weight {
            None => None,
            Some(weight) if total.saturating_add(weight) > 100 => Some(Share::Refused { weight, total }),
            Some(weight) => {
                total += weight;
                Some(Share::Percent(weight))
            }
        });
    }
    let rest = 100 - total;
    let unweighted = shares.iter().filter(|s| s.is_none()).count();
    let unweighted = u32::try_from(unweighted).unwrap_or(u32::MAX);
    let mut nth = 0u32;
    let mut shares: Vec<Share> = shares
        .into_iter()
        .map(|share| {
            share.unwrap_or_else(|| {
                let extra = u32::from(nth < rest % unweighted);
                nth += 1;
                Share::Percent(rest / unweighted + extra)
            })
        })
        .collect();
    let all_zero = shares
        .iter()
        .all(|s| matches!(s, Share::Percent(0) | Share::Refused { .. }));
    if all_zero && let Some(oldest) = shares.iter_mut().find(|s| matches!(s, Share::Percent(_))) {
        *oldest = Share::Percent(100);
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::Share::{Percent, Refused};
    use super::*;

    #[test]
    fn members_without_a_weight_share_what_is_left_and_the_oldest_get_the_remainder() {
        assert_eq!(split(&[None]), [Percent(100)]);
        assert_eq!(split(&[None, None]), [Percent(50), Percent(50)]);
        assert_eq!(
            split(&[None, None, None]),
            [Percent(34), Percent(33), Percent(33)]
        );
        assert_eq!(
            split(&[Some(80), None, None, None]),
            [Percent(80), Percent(7), Percent(7), Percent(6)],
            "explicit weights keep their exact percentage"
        );
        assert_eq!(
            split(&[None, Some(10), None]),
            [Percent(45), Percent(10), Percent(45)]
        );
        let shares = split(&[None, None, None, None, None, None, None]);
        let sum: u32 = shares
            .iter()
            .map(|s| match s {
                Percent(p) => *p,
                Refused { .. } => 0,
            })
            .sum();
        assert_eq!(sum, 100, "{shares:?}");
        assert_eq!(shares[0], Percent(15));
        assert_eq!(shares[6], Percent(14));
    }

    #[test]
    fn explicit_weights_are_taken_as_given_while_they_fit_in_100() {
        assert_eq!(
            split(&[Some(30)]),
            [Percent(30)],
            "relative: a lone member takes all"
        );
        assert_eq!(split(&[None, Some(10)]), [Percent(90), Percent(10)]);
        assert_eq!(
            split(&[Some(60), Some(50)]),
            [
                Percent(60),
                Refused {
                    weight: 50,
                    total: 60
                }
            ]
        );
        assert_eq!(
            split(&[None, Some(10), Some(95)]),
            [
                Percent(90),
                Percent(10),
                Refused {
                    weight: 95,
                    total: 10
                }
            ],
            "the refused weight leaves the rest to the unweighted"
        );
        assert_eq!(
            split(&[Some(100), None]),
            [Percent(100), Percent(0)],
            "nothing left: attached with no share"
        );
    }

    #[test]
    fn when_every_share_is_zero_the_oldest_member_with_a_share_takes_everything() {
        assert_eq!(split(&[Some(0), Some(0)]), [Percent(100), Percent(0)]);
        assert_eq!(split(&[Some(0)]), [Percent(100)]);
        assert_eq!(
            split(&[Some(60), Some(0)])[1],
            Percent(0),
            "not when another member has a share"
        );
        assert_eq!(split(&[]), []);
    }
}
