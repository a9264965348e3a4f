//! vgw — building-automation video gateway.
//!
//! Two hubs (DESIGN.md §1): the site [`model`] (what exists and how it is
//! related) and the point engine (what each point's value is).
//! Everything semantic — RDF triples, Haystack entities, BACnet objects —
//! is projected from the model by [`graph`].

pub mod app;
pub mod auth;
pub mod bacnet;
pub mod cli;
pub mod config;
pub mod drivers;
pub mod fsutil;
pub mod graph;
pub mod haystack;
pub mod heap;
pub mod http;
pub mod model;
pub mod mqtt;
pub mod points;
pub mod sim;
pub mod video;
