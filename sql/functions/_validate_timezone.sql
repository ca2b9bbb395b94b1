-- _validate_timezone: refuse a time zone name PostgreSQL does not know.
--
-- Called by create_schedule and update_schedule before anything is stored. Accepts the names of
-- pg_timezone_names (IANA names such as Europe/Berlin, and UTC); a fixed offset written as a
-- POSIX string is refused too, since its "DST" rules would not be a real zone's.
-- Tries a conversion rather than reading pg_timezone_names, which scans the zone files on disk
-- (tens of milliseconds). Errors: WF028 unknown or malformed time zone. Locks nothing.
create or replace function workflow._validate_timezone(timezone text)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
    if _validate_timezone.timezone is null or _validate_timezone.timezone !~ '^[A-Za-z][A-Za-z0-9_+/-]{0,63}$' then
        raise exception 'unknown time zone %', coalesce(quote_literal(_validate_timezone.timezone), 'null')
            using errcode = 'WF028', hint = 'Use an IANA name such as UTC, Europe/Berlin or America/New_York.';
    end if;
    begin
        perform pg_catalog.now() at time zone _validate_timezone.timezone;
    exception when invalid_parameter_value then
        raise exception 'unknown time zone %', quote_literal(_validate_timezone.timezone)
            using errcode = 'WF028', hint = 'Use an IANA name such as UTC, Europe/Berlin or America/New_York.';
    end;
end;
$$;
