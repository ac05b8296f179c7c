//! The views the registrar registers: their shapes and lives.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum Shape {
    ByAuthor,
    OpenAbove,
    TopWithAuthor,
    ThreadComments,
    ActiveUsers,
    Tagged,
    TitlePrefix,
    TopCommentsNested,
    CommentWindow,
    TaggedPage,
}

pub(crate) const SHAPES: [Shape; 10] = [
    Shape::ByAuthor,
    Shape::OpenAbove,
    Shape::TopWithAuthor,
    Shape::ThreadComments,
    Shape::ActiveUsers,
    Shape::Tagged,
    Shape::TitlePrefix,
    Shape::TopCommentsNested,
    Shape::CommentWindow,
    Shape::TaggedPage,
];

impl Shape {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Shape::ByAuthor => "SELECT * FROM thread WHERE author = $uid",
            Shape::OpenAbove => "SELECT * FROM thread WHERE status = 'open' AND score >= $min",
            Shape::TopWithAuthor => {
                "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author \
                 FROM thread ORDER BY score DESC LIMIT 5"
            }
            Shape::ThreadComments => {
                "SELECT * FROM comment WHERE thread = $tid ORDER BY created DESC LIMIT 10"
            }
            Shape::ActiveUsers => "SELECT * FROM user WHERE active = true AND karma > $k",
            Shape::Tagged => "SELECT * FROM thread WHERE tags CONTAINS $tag",
            Shape::TitlePrefix => {
                "SELECT * FROM thread WHERE string::starts_with(title, $prefix) OR score > 95"
            }
            Shape::TopCommentsNested => {
                "SELECT *, (SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] \
                 AS author FROM thread WHERE id = $parent.thread LIMIT 1)[0] AS thread \
                 FROM comment WHERE score >= $s ORDER BY score DESC, created ASC LIMIT 8"
            }
            Shape::CommentWindow => {
                "SELECT * FROM comment WHERE score < $s ORDER BY score DESC START 2 LIMIT 6"
            }
            Shape::TaggedPage => {
                "SELECT id, title, score FROM thread WHERE tags CONTAINSANY $tags \
                 ORDER BY title ASC LIMIT 7"
            }
        }
    }

    pub(crate) fn params(self, model: &Model, rng: &mut StdRng) -> Json {
        match self {
            Shape::ByAuthor => json!({"uid": format!("user:{}", model.pick(0, rng))}),
            Shape::OpenAbove => json!({"min": rng.random_range(50..100)}),
            Shape::TopWithAuthor => json!({}),
            Shape::ThreadComments => json!({"tid": format!("thread:{}", model.pick(1, rng))}),
            Shape::ActiveUsers => json!({"k": rng.random_range(0..100)}),
            Shape::Tagged => json!({"tag": TAGS.choose(rng).unwrap()}),
            Shape::TitlePrefix => json!({"prefix": WORDS.choose(rng).unwrap()}),
            Shape::TopCommentsNested => json!({"s": rng.random_range(0..40)}),
            Shape::CommentWindow => json!({"s": rng.random_range(10..50)}),
            Shape::TaggedPage => {
                let two: Vec<_> = TAGS.choose_multiple(rng, 2).collect();
                json!({"tags": two})
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum Life {
    /// TTL 1h, heartbeated, re-registered with new params now and then.
    Long,
    /// TTL 20s, heartbeated every 5s: must never expire while heartbeats land.
    KeptAlive,
    /// TTL 1h, unregistered after 10-60s, some re-registered before.
    Churn,
    /// TTL 20-40s, never heartbeated: must be swept.
    Expiring,
}

#[derive(Clone, Serialize)]
pub(crate) struct ViewRec {
    pub(crate) id: String,
    pub(crate) shape: Shape,
    pub(crate) life: Life,
    pub(crate) ttl_secs: u64,
    pub(crate) client_id: String,
    /// The params of the last registration SSP confirmed.
    pub(crate) acked: Option<Json>,
    /// A registration failed after the last confirmed one: SSP may hold
    /// either params, or (never confirmed) the view or not.
    pub(crate) uncertain: bool,
    pub(crate) last_active: Option<DateTime<Utc>>,
    /// Unregister confirmed.
    pub(crate) unregistered: bool,
    pub(crate) unregister_failed: bool,
    #[serde(skip)]
    pub(crate) next_heartbeat: Option<Instant>,
    #[serde(skip)]
    pub(crate) unregister_at: Option<Instant>,
    #[serde(skip)]
    pub(crate) reregister_at: Option<Instant>,
    /// Every request about this view and its answer, for the report.
    pub(crate) history: Vec<String>,
}

impl Life {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Life::Long => "long",
            Life::KeptAlive => "kept",
            Life::Churn => "churn",
            Life::Expiring => "expiring",
        }
    }
}

impl ViewRec {
    /// The view exists in SSP as far as the soak knows, and is not due to
    /// expire.
    pub(crate) fn must_exist(&self, at: DateTime<Utc>) -> bool {
        if self.acked.is_none() || self.unregistered || self.unregister_failed {
            return false;
        }
        match self.life {
            Life::Long | Life::Churn => true,
            Life::KeptAlive | Life::Expiring => self.last_active.is_some_and(|last| {
                last + chrono::Duration::seconds(self.ttl_secs as i64)
                    > at + chrono::Duration::seconds(1)
            }),
        }
    }

    /// The view must have been removed by now.
    pub(crate) fn must_be_gone(&self, at: DateTime<Utc>) -> bool {
        if self.unregistered && !self.uncertain {
            return true;
        }
        self.life == Life::Expiring
            && !self.uncertain
            && self.last_active.is_some_and(|last| {
                last + chrono::Duration::seconds(self.ttl_secs as i64)
                    + chrono::Duration::from_std(SWEEP + Duration::from_secs(10)).unwrap()
                    < at
            })
    }
}
