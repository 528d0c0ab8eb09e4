//! The IBM Telco churn CSV (`churn/{train,eval}.csv`) mapped onto lead events.
//!
//! Telco has no activity history: each customer becomes one `lead_created` event whose
//! `account` carries the relationship facts (tenure, contract, fees, payment, services,
//! household). The churn model reads those from the lead profile, so training, evaluation and
//! the live system see the same inputs.
//!
//! - `tenure` is `tenure_months`; `MonthlyCharges` is `monthly_fee`.
//! - `TotalCharges` is `total_billed`; its 11 blanks (all at tenure 0) stay absent.
//! - `Contract` is `contract`: `month_to_month`, `one_year`, `two_year`.
//! - `PaymentMethod` is `payment_method`: `electronic_check`, `mailed_check`,
//!   `bank_transfer`, `credit_card` (the "(automatic)" suffix is dropped).
//! - `PaperlessBilling` is `paperless`.
//! - The service columns give `services`, one name per `Yes`: `phone`, `multiple_lines`,
//!   `online_security`, `online_backup`, `device_protection`, `tech_support`,
//!   `streaming_tv`, `streaming_movies`, and `internet_dsl` or `internet_fiber_optic` from
//!   `InternetService`.
//! - `SeniorCitizen`, `Partner`, `Dependents` give `household`: `senior`, `partner`,
//!   `dependents`.
//! - `gender` is not read: a protected attribute has no place in a churn score.

use std::path::Path;

use chrono::{DateTime, Utc};
use leadbus_shared::event::Account;
use leadbus_shared::ids::IdError;
use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId};
use tracing::warn;

use super::{DatasetError, Loaded, derived_event_id, number, open_csv, snake_token, text, yes_no};

/// The label column.
pub const LABEL_COLUMN: &str = "Churn";

/// Yes/No service columns and the service name each adds to `Account::services`.
const SERVICE_COLUMNS: [(&str, &str); 8] = [
    ("PhoneService", "phone"),
    ("MultipleLines", "multiple_lines"),
    ("OnlineSecurity", "online_security"),
    ("OnlineBackup", "online_backup"),
    ("DeviceProtection", "device_protection"),
    ("TechSupport", "tech_support"),
    ("StreamingTV", "streaming_tv"),
    ("StreamingMovies", "streaming_movies"),
];

/// One Telco customer.
#[derive(Debug, Clone, PartialEq)]
pub struct TelcoRow {
    /// `customerID`.
    pub customer_id: String,
    /// `Churn`: the label.
    pub churned: bool,
    /// The relationship facts, as a CRM account.
    pub account: Account,
}

impl TelcoRow {
    /// The lead id this row gets in leadbus: its customer id.
    pub fn lead_id(&self) -> Result<LeadId, IdError> {
        LeadId::new(self.customer_id.as_str())
    }
}

/// Reads a Telco CSV. A row without id, label or tenure is skipped and counted.
pub fn read(path: &Path) -> Result<Loaded<TelcoRow>, DatasetError> {
    let (mut reader, header) = open_csv(path)?;
    let col = |name: &str| header.require(name);
    let c_id = col("customerID")?;
    let c_label = col(LABEL_COLUMN)?;
    let c_tenure = col("tenure")?;
    let c_contract = col("Contract")?;
    let c_monthly = col("MonthlyCharges")?;
    let c_total = col("TotalCharges")?;
    let c_payment = col("PaymentMethod")?;
    let c_paperless = col("PaperlessBilling")?;
    let c_internet = col("InternetService")?;
    let c_senior = col("SeniorCitizen")?;
    let c_partner = col("Partner")?;
    let c_dependents = col("Dependents")?;
    let services = SERVICE_COLUMNS
        .iter()
        .map(|(column, name)| Ok((col(column)?, *name)))
        .collect::<Result<Vec<_>, DatasetError>>()?;

    let mut rows = Vec::new();
    let mut skipped = 0;
    for (line, record) in reader.records().enumerate() {
        let Ok(record) = record else {
            skipped += 1;
            continue;
        };
        let id = text(&record, c_id);
        let label = yes_no(text(&record, c_label));
        let tenure = number(&record, c_tenure).filter(|t| (0.0..=1200.0).contains(t));
        let (Some(id), Some(churned), Some(tenure)) = (id, label, tenure) else {
            skipped += 1;
            let line = line + 2;
            warn!(path = %path.display(), line, "telco row without id, label or tenure skipped");
            continue;
        };

        let mut held: Vec<String> = services
            .iter()
            .filter(|(c, _)| yes_no(text(&record, *c)) == Some(true))
            .map(|(_, name)| (*name).to_owned())
            .collect();
        if let Some(kind) = text(&record, c_internet).filter(|s| !s.eq_ignore_ascii_case("no")) {
            held.extend(snake_token(kind).map(|k| format!("internet_{k}")));
        }
        held.sort();
        let household = [
            (c_senior, "senior"),
            (c_partner, "partner"),
            (c_dependents, "dependents"),
        ]
        .into_iter()
        .filter(|(c, _)| yes_no(text(&record, *c)) == Some(true))
        .map(|(_, name)| name.to_owned())
        .collect();

        let account = Account {
            tenure_months: Some(tenure),
            contract: text(&record, c_contract).and_then(snake_token),
            monthly_fee: number(&record, c_monthly).filter(|v| *v >= 0.0),
            total_billed: number(&record, c_total).filter(|v| *v >= 0.0),
            payment_method: text(&record, c_payment).and_then(payment_method),
            paperless: yes_no(text(&record, c_paperless)),
            services: Some(held),
            household: Some(household),
        };
        rows.push(TelcoRow {
            customer_id: id.to_owned(),
            churned,
            account,
        });
    }
    Ok(Loaded { rows, skipped })
}

/// `Bank transfer (automatic)` is `bank_transfer`; the others are their own tokens.
fn payment_method(raw: &str) -> Option<String> {
    let token = snake_token(raw)?;
    Some(
        token
            .strip_suffix("_automatic")
            .map(str::to_owned)
            .unwrap_or(token),
    )
}

/// The event a CRM would hold for this customer: one `lead_created` with the account facts.
pub fn row_events(
    row: &TelcoRow,
    tenant: &TenantId,
    lead_id: &LeadId,
    at: DateTime<Utc>,
) -> Vec<LeadEvent> {
    let mut created = LeadEvent::new(EventType::LeadCreated, tenant.clone(), lead_id.clone());
    created.event_id = derived_event_id(&[
        "telco",
        tenant.as_str(),
        lead_id.as_str(),
        &row.customer_id,
        "created",
    ]);
    created.occurred_at = at;
    created.data.account = Some(row.account.clone());
    vec![created]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_methods_are_plain_tokens() {
        assert_eq!(
            payment_method("Bank transfer (automatic)").as_deref(),
            Some("bank_transfer")
        );
        assert_eq!(
            payment_method("Credit card (automatic)").as_deref(),
            Some("credit_card")
        );
        assert_eq!(
            payment_method("Electronic check").as_deref(),
            Some("electronic_check")
        );
    }

    #[test]
    fn reads_a_small_file_and_skips_bad_rows() {
        let dir = std::env::temp_dir().join(format!("leadbus-telco-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        std::fs::write(
            &path,
            "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,\
InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,\
StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges,Churn\n\
7590-VHVEG,Female,1,Yes,No,0,No,No phone service,Fiber optic,No,Yes,No,No,No,No,\
Month-to-month,Yes,Electronic check,29.85, ,Yes\n\
bad,Male,0,No,No,x,No,No,DSL,No,No,No,No,No,No,One year,No,Mailed check,1,1,No\n",
        )
        .unwrap();
        let loaded = read(&path).unwrap();
        assert_eq!(loaded.skipped, 1);
        let row = &loaded.rows[0];
        assert!(row.churned);
        let a = &row.account;
        assert_eq!(a.total_billed, None);
        assert_eq!(a.contract.as_deref(), Some("month_to_month"));
        assert_eq!(
            a.services.as_deref(),
            Some(
                &[
                    "internet_fiber_optic".to_owned(),
                    "online_backup".to_owned()
                ][..]
            )
        );
        assert_eq!(
            a.household.as_deref(),
            Some(&["senior".to_owned(), "partner".to_owned()][..])
        );
        let t = TenantId::new("t").unwrap();
        let events = row_events(row, &t, &row.lead_id().unwrap(), Utc::now());
        assert_eq!(events.len(), 1);
        assert!(leadbus_shared::validate::check_values(&events[0], Utc::now()).is_ok());
    }
}
