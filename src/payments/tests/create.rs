//! The create state machine.

use std::time::Duration;

use super::Setup;
use super::scripted::{Call, created, lost, status};
use crate::error::{ErrorKind, PaymentError};
use crate::ledger::OrderStage;
use crate::money::Fen;
use crate::provider::{CreateRequest, OrderRef, PaymentState};

const ORDER_TIME: i64 = 1_767_225_600;

fn request(no: &str, fen: u64) -> CreateRequest {
    CreateRequest {
        merchant_order_no: no.to_owned(),
        amount: Fen(fen),
        notify_url: None,
        return_url: None,
        subject: None,
        pay_type: None,
        order_time: ORDER_TIME,
        channel: crate::provider::PayChannel::Qr,
    }
}

#[tokio::test]
async fn a_create_is_sent_once_and_recorded() {
    let s = Setup::new(&[("PAYMENT_NOTIFY_URL", "https://shop.example/notify")]);
    s.gateway.create(Ok(created("P-1")));
    let out = s.payments.create(request("M-1", 1230), &s.payments.config().scope()).await.unwrap();
    assert!(!out.replayed && out.recovered.is_none());
    assert_eq!(out.order.platform_order_no.as_deref(), Some("P-1"));
    assert_eq!(out.request.notify_url.as_deref(), Some("https://shop.example/notify"), "the configured default");
    assert_eq!(s.gateway.calls(), [Call::Create("M-1".into())]);
    let row = s.ledger.order(s.account(), "M-1").await.unwrap().unwrap();
    assert_eq!((row.stage, row.platform_order_no.as_deref()), (OrderStage::Created, Some("P-1")));
    assert_eq!(row.pay_url.as_deref(), Some("https://pay.example/P-1"));
}

#[tokio::test]
async fn a_repeat_with_the_same_number_and_amount_sends_nothing() {
    let s = Setup::new(&[]);
    s.gateway.create(Ok(created("P-1")));
    let first = s.payments.create(request("M-1", 1230), &s.payments.config().scope()).await.unwrap();
    let mut later = request("M-1", 1230);
    later.order_time = ORDER_TIME + 99;
    let again = s.payments.create(later, &s.payments.config().scope()).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.order.pay_url, first.order.pay_url);
    assert_eq!(again.request.order_time, ORDER_TIME, "the first call's order_time, for merchant-number queries");
    assert_eq!(s.gateway.creates_sent(), 1);
}

#[tokio::test]
async fn the_same_number_with_another_amount_is_refused_before_sending() {
    let s = Setup::new(&[]);
    s.gateway.create(Ok(created("P-1")));
    s.payments.create(request("M-1", 1230), &s.payments.config().scope()).await.unwrap();
    let err = s.payments.create(request("M-1", 1231), &s.payments.config().scope()).await.unwrap_err();
    // A conflict with an earlier order, not a malformed argument (the schema admits both calls).
    assert_eq!(err.kind, ErrorKind::Refused);
    assert!(err.message.contains("12.30") && err.message.contains("12.31"), "{}", err.message);
    assert_eq!(s.gateway.creates_sent(), 1);
}

#[tokio::test]
async fn a_lost_reply_is_settled_by_a_query_that_finds_the_order() {
    let s = Setup::new(&[]);
    s.gateway.create(Err(lost())).query(Ok(status("P-7", "M-7", PaymentState::Pending)));
    let out = s.payments.create(request("M-7", 1230), &s.payments.config().scope()).await.unwrap();
    let recovered = out.recovered.expect("recovered by the query");
    assert_eq!((recovered.state, out.order.platform_order_no.as_deref()), (PaymentState::Pending, Some("P-7")));
    assert!(out.order.pay_url.is_none(), "the pay link was lost with the reply");
    let asked = OrderRef::Merchant { merchant_order_no: "M-7".into(), order_time: Some(ORDER_TIME) };
    assert_eq!(s.gateway.calls(), [Call::Create("M-7".into()), Call::Query(asked)]);
    let row = s.ledger.order(s.account(), "M-7").await.unwrap().unwrap();
    assert_eq!((row.stage, row.platform_order_no.as_deref()), (OrderStage::Unknown, Some("P-7")));
}

#[tokio::test]
async fn a_lost_reply_no_query_confirms_is_outcome_unknown_and_a_repeat_asks_again() {
    let s = Setup::new(&[]);
    let unreachable = PaymentError::new(ErrorKind::Transport, "no reply to the query");
    s.gateway.create(Err(lost())).query(Err(unreachable));
    let err = s.payments.create(request("M-8", 1230), &s.payments.config().scope()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutcomeUnknown);
    assert!(err.message.contains("could not confirm"), "{}", err.message);
    assert_eq!(s.ledger.order(s.account(), "M-8").await.unwrap().unwrap().stage, OrderStage::Unknown);
    // The repeat holds the intent now and asks again under the same number and time.
    s.gateway.create(Ok(created("P-8")));
    let out = s.payments.create(request("M-8", 1230), &s.payments.config().scope()).await.unwrap();
    assert!(!out.replayed);
    assert_eq!(s.gateway.creates_sent(), 2);
    assert_eq!(s.ledger.order(s.account(), "M-8").await.unwrap().unwrap().stage, OrderStage::Created);
}

#[tokio::test]
async fn a_repeat_while_the_first_is_in_flight_sends_nothing() {
    let s = Setup::new(&[]);
    s.ledger.begin_order(s.account(), "M-9", Fen(1230), ORDER_TIME, Duration::from_secs(60)).await.unwrap();
    let err = s.payments.create(request("M-9", 1230), &s.payments.config().scope()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutcomeUnknown);
    assert!(err.message.contains("in flight"), "{}", err.message);
    assert_eq!(s.gateway.creates_sent(), 0);
}

#[tokio::test]
async fn a_create_refused_for_sure_is_forgotten_so_a_corrected_one_is_not_a_repeat() {
    let s = Setup::new(&[]);
    s.gateway.create(Err(PaymentError::new(ErrorKind::InvalidInput, "bad parameters").with_code("3010")));
    assert_eq!(
        s.payments.create(request("M-10", 1230), &s.payments.config().scope()).await.unwrap_err().kind,
        ErrorKind::InvalidInput
    );
    assert_eq!(s.ledger.order(s.account(), "M-10").await.unwrap(), None);
    s.gateway.create(Ok(created("P-10")));
    assert!(!s.payments.create(request("M-10", 1240), &s.payments.config().scope()).await.unwrap().replayed);
}

#[tokio::test]
async fn an_amount_above_the_limit_is_refused_before_anything_is_recorded() {
    let s = Setup::new(&[("PAYMENT_MAX_ORDER_AMOUNT", "10.00")]);
    let err = s.payments.create(request("M-11", 1001), &s.payments.config().scope()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("PAYMENT_MAX_ORDER_AMOUNT"));
    assert!(s.gateway.calls().is_empty());
    assert_eq!(s.ledger.order(s.account(), "M-11").await.unwrap(), None);
}

/// Item 9 (issue 12): a create whose reply was lost, seen `paid` by a query, then repeated: the
/// ledger knows the order exists, so a query settles it; nothing is sent and nothing older than
/// `paid` is reported.
#[tokio::test]
async fn a_lost_create_seen_paid_then_repeated_is_settled_by_a_query_not_resent() {
    let s = Setup::new(&[]);
    let unreachable = PaymentError::new(ErrorKind::Transport, "no reply to the query");
    s.gateway.create(Err(lost())).query(Err(unreachable));
    assert_eq!(
        s.payments.create(request("M-12", 1230), &s.payments.config().scope()).await.unwrap_err().kind,
        ErrorKind::OutcomeUnknown
    );
    s.gateway.query(Ok(status("P-12", "M-12", PaymentState::Paid)));
    let merchant = OrderRef::Merchant { merchant_order_no: "M-12".into(), order_time: None };
    assert_eq!(s.payments.query(merchant).await.unwrap().state, PaymentState::Paid);

    s.gateway.query(Ok(status("P-12", "M-12", PaymentState::Paid)));
    let again = s.payments.create(request("M-12", 1230), &s.payments.config().scope()).await.unwrap();
    let state = again.recovered.as_ref().map(|r| r.state).or(again.known_state);
    assert_eq!(state, Some(PaymentState::Paid));
    assert!(again.replayed, "nothing was sent");
    assert_eq!(again.order.platform_order_no.as_deref(), Some("P-12"));
    assert_eq!(s.gateway.creates_sent(), 1);
    assert_eq!(s.gateway.calls().last(), Some(&Call::Query(OrderRef::Platform("P-12".into()))));
}

/// Item 9 (issue 12): the same when the settling query itself fails: the repeat reports what the
/// ledger knows as an error to retry, never a resent create answered `pending`.
#[tokio::test]
async fn a_known_order_whose_settling_query_fails_is_not_resent() {
    let s = Setup::new(&[]);
    s.gateway.create(Err(lost())).query(Ok(status("P-13", "M-13", PaymentState::Pending)));
    assert!(s.payments.create(request("M-13", 1230), &s.payments.config().scope()).await.unwrap().recovered.is_some());
    s.gateway.query(Err(PaymentError::new(ErrorKind::Transport, "no reply to the query")));
    let err = s.payments.create(request("M-13", 1230), &s.payments.config().scope()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transport);
    assert!(err.message.contains("P-13"), "{}", err.message);
    assert_eq!(s.gateway.creates_sent(), 1);
}
