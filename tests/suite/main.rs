//! orgform's one integration-test binary: each module drives a part of orgform from outside.
//! One binary on purpose: every extra one re-links tokio and reqwest.

mod sandbox;
