//! The refund state machine, and the check that runs before it.

use super::Setup;
use super::scripted::{Call, Scripted, accepted, lost, refunds};
use crate::error::{ErrorKind, PaymentError};
use crate::ledger::RefundStage;
use crate::money::Fen;
use crate::provider::{RefundRequest, RefundState};

fn request(no: &str, fen: u64) -> RefundRequest {
    RefundRequest { order_no: "P-1".into(), amount: Fen(fen), reason: String::new(), mch_refund_no: no.to_owned() }
}

async fn refund(s: &Setup, no: &str, fen: u64) -> Result<crate::payments::RefundOutcome, PaymentError> {
    let checked = s.payments.check_refund(request(no, fen), &s.payments.config().scope()).await?;
    s.payments.refund(checked).await
}

#[tokio::test]
async fn an_accepted_refund_is_processing_and_recorded() {
    let s = Setup::new(&[]);
    s.gateway.refund(Ok(accepted("RF-1", "R-1")));
    let out = refund(&s, "RF-1", 100).await.unwrap();
    assert_eq!((out.accepted.state, out.replayed), (RefundState::Processing, false));
    assert_eq!(s.gateway.refunds_sent(), 1);
    let row = s.ledger.begin_refund(s.account(), "RF-1", "P-1", Fen(100), std::time::Duration::ZERO).await.unwrap();
    let crate::ledger::Begin::Earlier(row) = row else { panic!("recorded as finished: {row:?}") };
    assert_eq!((row.stage, row.refund_no.as_deref()), (RefundStage::Accepted, Some("R-1")));
}

#[tokio::test]
async fn a_refund_repeat_sends_nothing_and_reports_the_last_state_seen() {
    let s = Setup::new(&[]);
    s.gateway.refund(Ok(accepted("RF-2", "R-2")));
    refund(&s, "RF-2", 100).await.unwrap();
    let again = refund(&s, "RF-2", 100).await.unwrap();
    assert_eq!((again.replayed, again.accepted.refund_no.as_deref()), (true, Some("R-2")));
    s.gateway.refund_query(Ok(refunds("RF-2", "R-2", RefundState::Refunded)));
    s.payments
        .query_refund(crate::provider::RefundQuery { order_no: "P-1".into(), mch_refund_no: Some("RF-2".into()) })
        .await
        .unwrap();
    let again = refund(&s, "RF-2", 100).await.unwrap();
    assert_eq!((again.replayed, again.accepted.state), (true, RefundState::Refunded));
    assert_eq!(s.gateway.refunds_sent(), 1);
    let err = refund(&s, "RF-2", 101).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "the same number for another amount");
    assert_eq!(s.gateway.refunds_sent(), 1);
}

#[tokio::test]
async fn a_refund_over_the_cap_is_refused_before_anything_is_sent_or_recorded() {
    let s = Setup::new(&[("PAYMENT_MAX_REFUND_AMOUNT", "0.50")]);
    let Err(err) = s.payments.check_refund(request("RF-3", 51), &s.payments.config().scope()).await else {
        panic!("refused")
    };
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("PAYMENT_MAX_REFUND_AMOUNT"), "{}", err.message);
    assert_eq!(s.gateway.refunds_sent(), 0);
    let begin = s.ledger.begin_refund(s.account(), "RF-3", "P-1", Fen(51), std::time::Duration::ZERO).await.unwrap();
    assert_eq!(begin, crate::ledger::Begin::New, "nothing was recorded");
}

#[tokio::test]
async fn the_refund_check_runs_once() {
    let s = Setup::new(&[]);
    s.gateway.refund(Ok(accepted("RF-4", "R-4")));
    refund(&s, "RF-4", 100).await.unwrap();
    assert_eq!(s.gateway.calls(), [Call::RefundUnsupported, Call::Refund("RF-4".into())]);
}

#[tokio::test]
async fn a_gateway_without_a_refund_api_is_refused_by_the_check() {
    let gateway = Scripted::without_refunds(PaymentError::new(ErrorKind::Refused, "no refund API here"));
    let s = Setup::over(gateway, &[]);
    let Err(err) = s.payments.check_refund(request("RF-5", 100), &s.payments.config().scope()).await else {
        panic!("refused")
    };
    assert_eq!(err.kind, ErrorKind::Refused);
    assert_eq!(s.gateway.refunds_sent(), 0);
}

#[tokio::test]
async fn a_lost_refund_reply_is_settled_by_a_refund_query() {
    let s = Setup::new(&[]);
    s.gateway.refund(Err(lost())).refund_query(Ok(refunds("RF-6", "R-6", RefundState::Processing)));
    let out = refund(&s, "RF-6", 100).await.unwrap();
    assert_eq!((out.accepted.state, out.accepted.refund_no.as_deref()), (RefundState::Processing, Some("R-6")));
    assert!(out.accepted.message.contains("lost"));
    assert_eq!(s.gateway.calls()[1..], [Call::Refund("RF-6".into()), Call::RefundQuery(Some("RF-6".into()))]);
}

#[tokio::test]
async fn a_lost_refund_reply_no_query_confirms_is_outcome_unknown_and_a_repeat_asks_again() {
    let s = Setup::new(&[]);
    s.gateway.refund(Err(lost())).refund_query(Ok(refunds("OTHER", "R-0", RefundState::Processing)));
    assert_eq!(refund(&s, "RF-7", 100).await.unwrap_err().kind, ErrorKind::OutcomeUnknown);
    s.gateway.refund(Ok(accepted("RF-7", "R-7")));
    assert!(!refund(&s, "RF-7", 100).await.unwrap().replayed);
    assert_eq!(s.gateway.refunds_sent(), 2, "LFWin treats the same mch_refund_no as the same refund");
}

#[tokio::test]
async fn a_lost_refund_where_numbers_are_not_idempotent_is_never_resent() {
    let s = Setup::over(Scripted::with_non_idempotent_refunds(), &[]);
    s.gateway.refund(Err(lost()));
    assert_eq!(refund(&s, "RF-8", 100).await.unwrap_err().kind, ErrorKind::OutcomeUnknown);
    let err = refund(&s, "RF-8", 100).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutcomeUnknown);
    assert!(err.message.contains("it was not sent"), "{}", err.message);
    assert_eq!(s.gateway.refunds_sent(), 1);
}

/// Item 9 (issue 12): a refund whose reply was lost, seen `refunded`, then repeated: settled by a
/// refund query, answered `refunded`, not resent and answered `processing`.
#[tokio::test]
async fn a_lost_refund_seen_refunded_then_repeated_is_settled_by_a_query_not_resent() {
    let s = Setup::new(&[]);
    s.gateway.refund(Err(lost())).refund_query(Err(PaymentError::new(ErrorKind::Transport, "no reply")));
    assert_eq!(refund(&s, "RF-9", 100).await.unwrap_err().kind, ErrorKind::OutcomeUnknown);
    s.gateway.refund_query(Ok(refunds("RF-9", "R-9", RefundState::Refunded)));
    let query = crate::provider::RefundQuery { order_no: "P-1".into(), mch_refund_no: Some("RF-9".into()) };
    s.payments.query_refund(query).await.unwrap();

    s.gateway.refund_query(Ok(refunds("RF-9", "R-9", RefundState::Refunded)));
    let again = refund(&s, "RF-9", 100).await.unwrap();
    assert_eq!((again.accepted.state, again.replayed), (RefundState::Refunded, true));
    assert_eq!(again.accepted.refund_no.as_deref(), Some("R-9"));
    assert_eq!(s.gateway.refunds_sent(), 1);
    // Now recorded as accepted: the next repeat is answered from the ledger alone.
    let calls = s.gateway.calls().len();
    assert_eq!(refund(&s, "RF-9", 100).await.unwrap().accepted.state, RefundState::Refunded);
    assert_eq!(s.gateway.calls().len(), calls + 1, "only the refund check");
}

/// Item 19 (issue 12): a refund of a merchant order number this server created is `not_found`
/// with the platform number to use instead.
#[tokio::test]
async fn a_refund_of_a_merchant_order_number_names_the_platform_number() {
    let s = Setup::new(&[]);
    s.ledger.begin_order(s.account(), "M-19", Fen(500), 1_767_225_600, std::time::Duration::ZERO).await.unwrap();
    let created = crate::ledger::OrderUpdate {
        platform_order_no: Some("P-19"),
        ..crate::ledger::OrderUpdate::stage(crate::ledger::OrderStage::Created)
    };
    s.ledger.finish_order(s.account(), "M-19", created).await.unwrap();
    let not_found =
        PaymentError::new(ErrorKind::NotFound, "The gateway has no such record (status 3040). Check the order number.")
            .with_code("3040");
    s.gateway.refund(Err(not_found));
    let mut req = request("RF-19", 100);
    req.order_no = "M-19".into();
    let err =
        s.payments.refund(s.payments.check_refund(req, &s.payments.config().scope()).await.unwrap()).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::NotFound, Some("3040")));
    assert!(err.message.contains("merchant_order_no") && err.message.contains("P-19"), "{}", err.message);
}
