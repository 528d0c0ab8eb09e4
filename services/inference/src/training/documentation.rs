//! What each artifact records about its source columns: how they reach the model, and which
//! are left out and why.

use crate::models::artifact::{ColumnMapping, ExcludedColumn};

fn excluded(list: &[(&str, &str)]) -> Vec<ExcludedColumn> {
    list.iter()
        .map(|(column, reason)| ExcludedColumn {
            column: (*column).into(),
            reason: (*reason).into(),
        })
        .collect()
}

fn mapping(list: &[(&str, &str, &str)]) -> Vec<ColumnMapping> {
    list.iter()
        .map(|(column, profile_field, input)| ColumnMapping {
            column: (*column).into(),
            profile_field: (*profile_field).into(),
            input: (*input).into(),
        })
        .collect()
}

const AFTER_CONTACT: &str = "written by sales after contact: leaks the outcome (PROVENANCE.md)";
const ALMOST_CONSTANT: &str = "almost constant (at most a dozen Yes in 9,240 rows)";
const NO_FIELD: &str = "course-specific form field with no place in a lead profile";

/// Columns of the leads CSV the lead score does not read.
pub(crate) fn lead_excluded() -> Vec<ExcludedColumn> {
    excluded(&[
        ("Prospect ID", "identifier; becomes the lead id"),
        ("Lead Number", "identifier"),
        ("Converted", "the label"),
        ("Tags", AFTER_CONTACT),
        ("Lead Quality", AFTER_CONTACT),
        ("Lead Profile", AFTER_CONTACT),
        (
            "Last Activity",
            "the latest activity, recorded up to the outcome: leaks it",
        ),
        (
            "Last Notable Activity",
            "the latest activity, recorded up to the outcome: leaks it",
        ),
        ("Asymmetrique Activity Index", AFTER_CONTACT),
        ("Asymmetrique Profile Index", AFTER_CONTACT),
        ("Asymmetrique Activity Score", AFTER_CONTACT),
        ("Asymmetrique Profile Score", AFTER_CONTACT),
        (
            "Country",
            "no country field in the event contract; 27% blank, 95% of the rest India",
        ),
        ("Specialization", NO_FIELD),
        ("How did you hear about X Education", NO_FIELD),
        ("What matters most to you in choosing a course", NO_FIELD),
        ("A free copy of Mastering The Interview", NO_FIELD),
        ("Search", ALMOST_CONSTANT),
        ("Magazine", ALMOST_CONSTANT),
        ("Newspaper Article", ALMOST_CONSTANT),
        ("X Education Forums", ALMOST_CONSTANT),
        ("Newspaper", ALMOST_CONSTANT),
        ("Digital Advertisement", ALMOST_CONSTANT),
        ("Through Recommendations", ALMOST_CONSTANT),
        ("Receive More Updates About Our Courses", "constant No"),
        ("Update me on Supply Chain Content", "constant No"),
        ("Get updates on DM Content", "constant No"),
        ("I agree to pay the amount through cheque", "constant No"),
    ])
}

/// How the leads CSV reaches the lead score.
pub(crate) fn lead_mapping() -> Vec<ColumnMapping> {
    mapping(&[
        (
            "Lead Source",
            "lead_created data.source -> attributes.source",
            "source: category",
        ),
        (
            "Lead Origin",
            "lead_created data.origin -> attributes.origin",
            "origin: category",
        ),
        (
            "What is your current occupation",
            "lead_created data.occupation -> attributes.occupation",
            "occupation: category",
        ),
        (
            "City",
            "lead_created data.city -> attributes.city (Select and blank are absent)",
            "city: category",
        ),
        (
            "Do Not Email",
            "lead_created data.do_not_email -> attributes.do_not_email",
            "do_not_email: category yes/no",
        ),
        (
            "Do Not Call",
            "lead_created data.do_not_call -> attributes.do_not_call",
            "do_not_call: category yes/no",
        ),
        (
            "TotalVisits",
            "interaction_recorded: one site_visit each -> visits",
            "visits: log1p, standardised",
        ),
        (
            "Total Time Spent on Website",
            "site_visit duration_s, whole seconds spread over the visits -> time_on_site_s",
            "time_on_site_s: standardised",
        ),
        (
            "Page Views Per Visit",
            "site_visit page_views, round(per visit x visits) spread -> page_views",
            "pages_per_visit = page_views / visits: log1p, standardised",
        ),
        (
            "TotalVisits, Total Time Spent on Website",
            "visits and time_on_site_s both 0",
            "site_activity: category none/some",
        ),
    ])
}

/// Columns of the Telco CSV the churn model does not read.
pub(crate) fn churn_excluded() -> Vec<ExcludedColumn> {
    excluded(&[
        ("customerID", "identifier; becomes the lead id"),
        ("Churn", "the label"),
        (
            "gender",
            "protected attribute; has no place in a churn score",
        ),
    ])
}

/// How the Telco CSV reaches the churn model.
pub(crate) fn churn_mapping() -> Vec<ColumnMapping> {
    mapping(&[
        (
            "tenure",
            "account.tenure_months",
            "tenure_months: log1p, standardised",
        ),
        (
            "MonthlyCharges",
            "account.monthly_fee",
            "monthly_fee: standardised",
        ),
        (
            "TotalCharges",
            "account.total_billed (blank stays absent)",
            "total_billed: log1p, standardised; absent counts as the mean",
        ),
        ("Contract", "account.contract", "contract: category"),
        (
            "PaymentMethod",
            "account.payment_method",
            "payment_method: category",
        ),
        (
            "PaperlessBilling",
            "account.paperless",
            "paperless: category yes/no",
        ),
        (
            "PhoneService, MultipleLines, InternetService, OnlineSecurity, OnlineBackup, \
             DeviceProtection, TechSupport, StreamingTV, StreamingMovies",
            "account.services (one name per Yes; internet_dsl or internet_fiber_optic)",
            "services: one indicator per service",
        ),
        (
            "SeniorCitizen, Partner, Dependents",
            "account.household (senior, partner, dependents)",
            "household: one indicator per member",
        ),
    ])
}
