-- The network's money (CONTRACT §10). An offer earns `revenue` from its advertiser and pays `payout`
-- to its publisher; goals price events other than `conversion`; caps bound what is accepted per UTC
-- day or month. Existing offers and conversions earn what they paid: §10's default revenue = payout.
alter table offers add column revenue_minor bigint check (revenue_minor >= 0);
update offers set revenue_minor = payout_minor;
alter table offers alter column revenue_minor set not null;
-- {"<event>": {"payout": {"minor": "2000"} | {"percent": "30"}, "revenue": ..., "multiple": bool}}:
-- validated by the admin API, read by every node from its catalog.
alter table offers add column goals jsonb not null default '{}';
alter table offers add column caps jsonb not null default '[]';

alter table conversions add column revenue_minor bigint check (revenue_minor >= 0);
update conversions set revenue_minor = payout_minor;
alter table conversions alter column revenue_minor set not null;
-- The sale value the advertiser reported, in the conversion's currency; null when not sent.
alter table conversions add column amount_minor bigint check (amount_minor >= 0);
