-- Expiries no run has reported yet: a handful at any time, while expired deliveries pile up for
-- ever. Without this, each run slice walked every expired delivery to find the unreported ones.
create index deliveries_expiry_unreported on deliveries (created_at) where state = 'expired' and expiry_reported_by is null;

-- Recovery reads a run's root causes one time slice at a time.
create index reconciliation_root_causes_pixel on reconciliation_root_causes (run_id, pixel_at);
