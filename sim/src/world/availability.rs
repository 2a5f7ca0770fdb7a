//! When links are available: fixed schedules, random outage processes (alone or shared by
//! a group), and the ferry's timetable.

use std::collections::BTreeSet;

use super::{Event, HOUR, Micros, SECOND, World, hours};
use crate::SimError;
use crate::scenario::{Availability, Ferry, FerrySide};

impl World {
    pub(super) fn schedule_availability(&mut self) -> Result<(), SimError> {
        let mut groups = BTreeSet::new();
        for link in 0..self.links.len() {
            match self.links[link].availability.clone() {
                Availability::Always => {}
                Availability::Schedule { .. } | Availability::FerryDocked { .. } => {
                    let up = self.scheduled_up(link, 0);
                    self.links[link].avail_up = up;
                    self.next_availability(link, up);
                }
                Availability::Random { group: None, .. } => self.next_availability(link, true),
                Availability::Random {
                    group: Some(group), ..
                } => {
                    if groups.insert(group.clone()) {
                        self.next_group(&group, true);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a scheduled or ferry-bound link is up at `t`.
    pub(super) fn scheduled_up(&self, link: usize, t: Micros) -> bool {
        match &self.links[link].availability {
            Availability::Schedule {
                windows_h,
                repeat_h,
            } => {
                let mut th = t as f64 / HOUR as f64;
                if let Some(r) = repeat_h {
                    th %= r;
                }
                windows_h.iter().any(|[s, e]| (*s..*e).contains(&th))
            }
            Availability::FerryDocked { side } => {
                let Some(ferry) = &self.scenario.ferry else {
                    return false;
                };
                let th = t as f64 / HOUR as f64;
                let at_island = ferry_windows(ferry, th)
                    .iter()
                    .any(|(arrive, leave)| (*arrive..*leave).contains(&th));
                let at_sea = ferry_at_sea(ferry, th);
                match side {
                    FerrySide::Island => at_island,
                    FerrySide::Mainland => !at_island && !at_sea,
                }
            }
            _ => true,
        }
    }

    /// Schedules the next change of a link's own availability after it became `up`.
    pub(super) fn next_availability(&mut self, link: usize, up: bool) {
        match self.links[link].availability.clone() {
            Availability::Random {
                mean_up_h,
                mean_down_h,
                group: None,
            } => {
                let mean = if up { mean_up_h } else { mean_down_h };
                let gap = hours(self.link_rng.exp(mean)).max(1);
                self.schedule(self.now + gap, Event::Availability { link, up: !up });
            }
            Availability::Schedule { .. } | Availability::FerryDocked { .. } => {
                // Step through time a minute at a time until the state flips (bounded).
                let minute = 60 * SECOND;
                let mut t = self.now + minute;
                while t <= self.deadline {
                    if self.scheduled_up(link, t) != up {
                        self.schedule(t, Event::Availability { link, up: !up });
                        return;
                    }
                    t += minute;
                }
            }
            _ => {}
        }
    }

    pub(super) fn next_group(&mut self, group: &str, up: bool) {
        let Some((mean_up_h, mean_down_h)) =
            self.links.iter().find_map(|l| match &l.availability {
                Availability::Random {
                    mean_up_h,
                    mean_down_h,
                    group: Some(g),
                } if g == group => Some((*mean_up_h, *mean_down_h)),
                _ => None,
            })
        else {
            return;
        };
        let mean = if up { mean_up_h } else { mean_down_h };
        let gap = hours(self.link_rng.exp(mean)).max(1);
        let event = Event::Group {
            group: group.to_owned(),
            up: !up,
        };
        self.schedule(self.now + gap, event);
    }
}

/// The island quay windows (arrive, leave) in hours from the start, around `th`.
pub(crate) fn ferry_windows(ferry: &Ferry, th: f64) -> Vec<(f64, f64)> {
    let day = (th / 24.0).floor();
    let mut out = Vec::new();
    for d in [day - 1.0, day, day + 1.0] {
        for dep in &ferry.departures_h {
            let arrive = d * 24.0 + dep + ferry.crossing_h;
            out.push((arrive, arrive + ferry.island_dwell_h));
        }
    }
    out
}

/// Whether the ferry is crossing (either way) at `th`.
fn ferry_at_sea(ferry: &Ferry, th: f64) -> bool {
    let day = (th / 24.0).floor();
    for d in [day - 1.0, day, day + 1.0] {
        for dep in &ferry.departures_h {
            let out = d * 24.0 + dep;
            let back = out + ferry.crossing_h + ferry.island_dwell_h;
            if (out..out + ferry.crossing_h).contains(&th)
                || (back..back + ferry.crossing_h).contains(&th)
            {
                return true;
            }
        }
    }
    false
}
