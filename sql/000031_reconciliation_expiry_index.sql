-- Expiries no run has reported yet: a handful at any time, while expired deliveries pile up for
-- ever. Without this, each run slice walked every expired delivery to find the unreported ones.
create index deliveries_expiry_unreported on deliveries (created_at) where state = 'expired' and expiry_reported_by is null;
