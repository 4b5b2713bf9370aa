//! RFM summaries: see the SQL layer for the aggregate.
