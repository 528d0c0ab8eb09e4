//! Which models run for which event type (DESIGN.md section 3).

use leadbus_shared::EventType;

/// The models one event runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSet {
    /// Lead scoring.
    pub lead_score: bool,
    /// Churn prediction.
    pub churn: bool,
    /// Property matching.
    pub matching: bool,
}

/// The table.
pub fn models_for(event_type: EventType) -> ModelSet {
    let set = |lead_score, churn, matching| ModelSet {
        lead_score,
        churn,
        matching,
    };
    match event_type {
        EventType::LeadCreated => set(true, true, true),
        EventType::LeadUpdated => set(true, true, false),
        EventType::InteractionRecorded => set(true, true, false),
        EventType::PropertyViewed => set(true, false, true),
        EventType::ScoreRefreshRequested => set(true, false, false),
        EventType::ChurnCheckRequested => set(true, true, false),
        EventType::SystemHealthCheck => set(false, false, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_viewed_runs_scoring_and_matching_not_churn() {
        let s = models_for(EventType::PropertyViewed);
        assert!(s.lead_score && s.matching && !s.churn);
    }
}
