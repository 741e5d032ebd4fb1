//! The one integration test binary (every extra one re-links tokio and reqwest): modules by
//! area, all through orgform's public surface.

mod golden;
mod planner_props;
mod plans;
mod provider_salesforce;
mod specs;
