-- Daily FX rates (CONTRACT §10): one set per UTC day, against that day's base currency (1 base = rate
-- units). PUT replaces a day's whole set, so the day row carries the base and the rates hang off it.
-- Rates are numeric without a declared scale: stored and returned exactly as sent, never a float.
create table fx_rate_days (
  day date primary key,
  base char(3) not null,
  updated_at timestamptz not null default now()
);
create table fx_rates (
  day date not null references fx_rate_days (day) on delete cascade,
  currency char(3) not null,
  rate numeric not null check (rate > 0),
  primary key (day, currency)
);
