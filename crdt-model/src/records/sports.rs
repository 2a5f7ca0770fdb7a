//! Sports (scope `sports`): tournaments, teams, players, fixtures and results.
//!
//! Each referee of a fixture enters the result under their own key,
//! `ROOT.results.<fixture>.<referee>`, so two referees entering different scores offline
//! leave two entries, not one overwritten by the other. [`result`] then reports a conflict,
//! the same on every replica, until the tournament's organiser records a decision over the
//! entries it saw; an entry arriving after the decision reopens it.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{AutoCommit, ROOT};
use chrono::NaiveDate;

use super::store::{
    self, Fields, MapReader, MapWriter, Record, Scope, StoreError, child_map, tag_enum,
};
use super::values::{InputError, NodeRef, PersonName, RecordId, Text, Timestamp};

tag_enum! {
    pub enum Sport {
        Football = "football",
        Volleyball = "volleyball",
        BeachVolleyball = "beach-volleyball",
        TugOfWar = "tug-of-war",
        BoatRace = "boat-race",
        Badminton = "badminton",
    }
}

/// A sports operation that the records or their rules refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SportsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{referee} is not a referee of fixture {fixture}")]
    NotReferee {
        fixture: RecordId,
        referee: RecordId,
    },
    #[error("only the organiser {organiser} may decide fixture {fixture}; {node} asked")]
    NotOrganiser {
        fixture: RecordId,
        node: NodeRef,
        organiser: NodeRef,
    },
    #[error("a team cannot play itself ({team})")]
    SameTeam { team: RecordId },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tournament {
    pub id: RecordId,
    pub name: Text,
    pub sport: Sport,
    pub commune: RecordId,
    pub starts: NaiveDate,
    pub ends: NaiveDate,
    /// The organiser's box: decides disputed results.
    pub organiser: NodeRef,
}

impl Record for Tournament {
    const SCOPE: Scope = Scope::Sports;
    const COLLECTION: &'static str = "tournaments";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Tournament {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("name", &self.name)?;
        w.put("sport", &self.sport)?;
        w.put("commune", &self.commune)?;
        w.put("starts", &self.starts)?;
        w.put("ends", &self.ends)?;
        w.put("organiser", &self.organiser)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            name: r.get("name")?,
            sport: r.get("sport")?,
            commune: r.get("commune")?,
            starts: r.get("starts")?,
            ends: r.get("ends")?,
            organiser: r.get("organiser")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: RecordId,
    pub tournament: RecordId,
    pub name: Text,
    pub commune: RecordId,
}

impl Record for Team {
    const SCOPE: Scope = Scope::Sports;
    const COLLECTION: &'static str = "teams";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Team {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("tournament", &self.tournament)?;
        w.put("name", &self.name)?;
        w.put("commune", &self.commune)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            tournament: r.get("tournament")?,
            name: r.get("name")?,
            commune: r.get("commune")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Player {
    pub id: RecordId,
    pub team: RecordId,
    pub name: PersonName,
    pub shirt: u32,
    pub card: Option<RecordId>,
}

impl Record for Player {
    const SCOPE: Scope = Scope::Sports;
    const COLLECTION: &'static str = "players";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Player {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("team", &self.team)?;
        w.put("name", &self.name)?;
        w.put("shirt", &self.shirt)?;
        w.put("card", &self.card)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            team: r.get("team")?,
            name: r.get("name")?,
            shirt: r.get("shirt")?,
            card: r.get("card")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    pub id: RecordId,
    pub tournament: RecordId,
    pub home: RecordId,
    pub away: RecordId,
    pub kickoff: Timestamp,
    pub venue: Text,
    pub referees: BTreeSet<RecordId>,
}

impl Record for Fixture {
    const SCOPE: Scope = Scope::Sports;
    const COLLECTION: &'static str = "fixtures";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Fixture {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("tournament", &self.tournament)?;
        w.put("home", &self.home)?;
        w.put("away", &self.away)?;
        w.put("kickoff", &self.kickoff)?;
        w.put("venue", &self.venue)?;
        w.set("referees", &self.referees)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            tournament: r.get("tournament")?,
            home: r.get("home")?,
            away: r.get("away")?,
            kickoff: r.get("kickoff")?,
            venue: r.get("venue")?,
            referees: r.set("referees")?,
        })
    }
}

/// A final score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Score {
    pub home: u32,
    pub away: u32,
}

/// One referee's entry of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultEntry {
    pub score: Score,
    pub at: Timestamp,
    pub node: NodeRef,
}

impl Score {
    /// The stored form, `home-away`: one scalar, so two concurrent entries by one referee
    /// conflict as whole scores.
    pub fn encode(self) -> String {
        format!("{}-{}", self.home, self.away)
    }

    pub fn decode(field: &'static str, value: &str) -> Result<Self, InputError> {
        let err = || InputError::Choice {
            field,
            value: value.to_owned(),
            allowed: "home-away",
        };
        let (home, away) = value.split_once('-').ok_or_else(err)?;
        Ok(Self {
            home: home.parse().map_err(|_| err())?,
            away: away.parse().map_err(|_| err())?,
        })
    }
}

impl Fields for ResultEntry {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("score", &self.score.encode())?;
        w.put("at", &self.at)?;
        w.put("node", &self.node)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        let score: String = r.get("score")?;
        let score = Score::decode("score", &score).map_err(|e| r.invalid(e))?;
        Ok(Self {
            score,
            at: r.get("at")?,
            node: r.get("node")?,
        })
    }
}

/// The organiser's decision over disputed entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub score: Score,
    pub node: NodeRef,
    pub at: Timestamp,
    /// The entries decided over, as `referee=home-away`.
    pub over: BTreeSet<String>,
}

impl Fields for Decision {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("home", &self.score.home)?;
        w.put("away", &self.score.away)?;
        w.put("node", &self.node)?;
        w.put("at", &self.at)?;
        let over = self.over.iter().map(|s| (s.clone(), true));
        let mut map = w.map("over")?;
        map.retain(|k| self.over.contains(k))?;
        for (key, value) in over {
            map.put(&key, &value)?;
        }
        Ok(())
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        let score = Score {
            home: r.get("home")?,
            away: r.get("away")?,
        };
        let over = match r.map("over")? {
            Some(map) => map.keys().into_iter().collect(),
            None => BTreeSet::new(),
        };
        Ok(Self {
            score,
            node: r.get("node")?,
            at: r.get("at")?,
            over,
        })
    }
}

/// A fixture's result as every replica holding the same entries computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixtureResult {
    NotPlayed,
    /// Every entry gives this score.
    Agreed(Score),
    /// Entries differ (or one referee's devices disagree) and no decision covers them.
    Conflict(BTreeMap<RecordId, Vec<Score>>),
    /// The organiser decided over exactly the entries present.
    Decided(Score),
}

/// Validates a fixture (two different teams) and records it.
pub fn schedule(doc: &mut AutoCommit, fixture: &Fixture) -> Result<(), SportsError> {
    if fixture.home == fixture.away {
        return Err(SportsError::SameTeam {
            team: fixture.home.clone(),
        });
    }
    store::insert(doc, fixture)?;
    results_map(doc, &fixture.id)?;
    Ok(())
}

fn results_map(doc: &mut AutoCommit, fixture: &RecordId) -> Result<automerge::ObjId, StoreError> {
    let results = child_map(doc, &ROOT, "results")?;
    child_map(doc, &results, fixture.as_str())
}

/// A referee of the fixture enters (or corrects) their result.
pub fn enter_result(
    doc: &mut AutoCommit,
    fixture_id: &RecordId,
    referee: &RecordId,
    entry: &ResultEntry,
) -> Result<(), SportsError> {
    let fixture: Fixture = store::fetch(doc, fixture_id)?;
    if !fixture.referees.contains(referee) {
        let (fixture, referee) = (fixture_id.clone(), referee.clone());
        return Err(SportsError::NotReferee { fixture, referee });
    }

    let results = results_map(doc, fixture_id)?;
    let obj = child_map(doc, &results, referee.as_str())?;
    entry.write(&mut MapWriter::new(doc, obj, "results"))?;
    Ok(())
}

/// Every score entered per referee: more than one for a referee means two of their devices
/// wrote concurrently.
pub fn entries(
    doc: &AutoCommit,
    fixture: &RecordId,
) -> Result<BTreeMap<RecordId, Vec<Score>>, SportsError> {
    let root = MapReader::root(doc, "results");
    let Some(map) = root.path(&["results", fixture.as_str()])? else {
        return Ok(BTreeMap::new());
    };

    let mut entries = BTreeMap::new();
    for key in map.keys() {
        let Some(entry_map) = map.map(&key)? else {
            continue;
        };
        let mut scores = Vec::new();
        for value in entry_map.all_scalars("score")? {
            let text = value.as_str().unwrap_or_default().to_owned();
            scores.push(Score::decode("score", &text).map_err(|e| map.invalid(e))?);
        }
        scores.sort();
        scores.dedup();
        entries.insert(map.id(&key)?, scores);
    }
    Ok(entries)
}

fn entry_keys(entries: &BTreeMap<RecordId, Vec<Score>>) -> BTreeSet<String> {
    let each = entries.iter().flat_map(|(referee, scores)| {
        scores
            .iter()
            .map(move |s| format!("{referee}={}-{}", s.home, s.away))
    });
    each.collect()
}

/// The fixture's result, derived from the entries and the organiser's decision.
pub fn result(doc: &AutoCommit, fixture: &RecordId) -> Result<FixtureResult, SportsError> {
    let entries = entries(doc, fixture)?;
    if entries.is_empty() {
        return Ok(FixtureResult::NotPlayed);
    }

    let decision: Option<Decision> = match MapReader::root(doc, "decisions").map("decisions")? {
        Some(map) => map.nested_opt(fixture.as_str())?,
        None => None,
    };
    if let Some(decision) = decision
        && decision.over == entry_keys(&entries)
    {
        return Ok(FixtureResult::Decided(decision.score));
    }

    let scores: BTreeSet<&Score> = entries.values().flatten().collect();
    match scores.into_iter().collect::<Vec<_>>().as_slice() {
        [only] => Ok(FixtureResult::Agreed(**only)),
        _ => Ok(FixtureResult::Conflict(entries)),
    }
}

/// The organiser settles a fixture's result over the entries present now.
pub fn decide(
    doc: &mut AutoCommit,
    fixture_id: &RecordId,
    by: &NodeRef,
    score: Score,
    at: Timestamp,
) -> Result<(), SportsError> {
    let fixture: Fixture = store::fetch(doc, fixture_id)?;
    let tournament: Tournament = store::fetch(doc, &fixture.tournament)?;
    if by != &tournament.organiser {
        let (node, organiser) = (by.clone(), tournament.organiser);
        return Err(SportsError::NotOrganiser {
            fixture: fixture_id.clone(),
            node,
            organiser,
        });
    }

    let over = entry_keys(&entries(doc, fixture_id)?);
    let decision = Decision {
        score,
        node: by.clone(),
        at,
        over,
    };
    let decisions = child_map(doc, &ROOT, "decisions")?;
    let obj = child_map(doc, &decisions, fixture_id.as_str())?;
    decision.write(&mut MapWriter::new(doc, obj, "decisions"))?;
    Ok(())
}
