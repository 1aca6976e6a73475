-- oddstream: one group commit in one round trip.
-- (Replaces any earlier signature: see _create_schema.)
--
-- Called once per group by the PostgreSQL adapter, in autocommit, so the statement is its
-- own transaction. It applies the same rules as planner.py (the SQLite side) and is held
-- to them by the same conformance tests:
--   * an advisory lock serializes position assignment, so positions commit in order;
--   * the parts of one request (one append call) are all checked before any is written,
--     so a request is atomic; requests of the group succeed or fail independently;
--   * appends whose event ids are already stored as that same append return the original
--     result (status 1) and write nothing.
-- Status per part: 0 appended, 1 idempotent retry, 2 wrong expected version (o_actual),
-- 3 duplicate event id (o_detail), 4 not written because another part of its request
-- failed. Expected: >= 0 exact, -1 any, -2 no stream, -3 stream exists.
CREATE OR REPLACE FUNCTION {schema}.append_group(
    p_lock bigint,
    p_channel text,
    p_req int[],
    p_stream text[],
    p_expected bigint[],
    p_count int[],
    p_check_ids boolean[],
    p_ids uuid[],
    p_types text[],
    p_svs int[],
    p_data jsonb[],
    p_meta jsonb[]
) RETURNS TABLE (
    o_status int, o_version bigint, o_first bigint, o_last bigint, o_actual bigint,
    o_detail text
) LANGUAGE plpgsql AS $fn$
DECLARE
    n_parts int := coalesce(array_length(p_stream, 1), 0);
    head bigint;
    recorded timestamptz;
    starts int[] := array_fill(0, ARRAY[greatest(n_parts, 1)]);
    st int[] := array_fill(0, ARRAY[greatest(n_parts, 1)]);
    vers bigint[] := array_fill(0::bigint, ARRAY[greatest(n_parts, 1)]);
    firsts bigint[] := array_fill(0::bigint, ARRAY[greatest(n_parts, 1)]);
    lasts bigint[] := array_fill(0::bigint, ARRAY[greatest(n_parts, 1)]);
    actuals bigint[] := array_fill(0::bigint, ARRAY[greatest(n_parts, 1)]);
    details text[] := array_fill(NULL::text, ARRAY[greatest(n_parts, 1)]);
    off int := 1;
    i int := 1;
    j int;
    k int;
    s int;
    e int;
    cur bigint;
    exp bigint;
    f_n int;
    f_streams int;
    f_stream text;
    f_min_v bigint;
    f_max_v bigint;
    f_min_p bigint;
    f_max_p bigint;
    f_shapes int;
    failed boolean;
    n_retry int;
    wrote boolean := false;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        -- the checks below must see what committed while this call waited for the lock
        RAISE EXCEPTION 'append_group needs READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
    PERFORM pg_advisory_xact_lock(p_lock);
    recorded := clock_timestamp();
    SELECT coalesce(max(position), 0) INTO head FROM {schema}.events;
    FOR k IN 1..n_parts LOOP
        starts[k] := off;
        off := off + p_count[k];
    END LOOP;

    WHILE i <= n_parts LOOP
        j := i;
        WHILE j <= n_parts AND p_req[j] = p_req[i] LOOP
            j := j + 1;
        END LOOP;
        -- parts i .. j-1 are one request: check them all first
        failed := false;
        n_retry := 0;
        FOR k IN i..j-1 LOOP
            s := starts[k];
            e := s + p_count[k] - 1;
            exp := p_expected[k];
            SELECT coalesce(max(version), 0) INTO cur
              FROM {schema}.events WHERE stream_id = p_stream[k];
            actuals[k] := cur;
            f_n := 0;
            IF p_check_ids[k] THEN
                SELECT count(ev.position), count(DISTINCT ev.stream_id), min(ev.stream_id),
                       min(ev.version), max(ev.version), min(ev.position), max(ev.position),
                       count(DISTINCT ev.version - u.ord)
                  INTO f_n, f_streams, f_stream, f_min_v, f_max_v, f_min_p, f_max_p, f_shapes
                  FROM unnest(p_ids[s:e]) WITH ORDINALITY AS u(x, ord)
                  JOIN {schema}.events ev ON ev.event_id = u.x;
            END IF;
            IF f_n > 0 THEN
                IF f_n < p_count[k] THEN
                    st[k] := 3;
                    details[k] := 'some events of this append are stored and others are not';
                ELSIF f_streams > 1 OR f_stream <> p_stream[k] THEN
                    st[k] := 3;
                    details[k] := 'it is in ' || quote_literal(f_stream);
                ELSIF f_shapes <> 1 THEN
                    st[k] := 3;
                    details[k] := 'the ids are stored in another order than this append gives them';
                ELSIF (exp = -2 AND f_min_v <> 1) OR (exp >= 0 AND f_min_v <> exp + 1) THEN
                    st[k] := 3;
                    details[k] := 'these events are stored at versions ' || f_min_v || '..'
                                  || f_max_v || ', not from '
                                  || (CASE WHEN exp = -2 THEN 0 ELSE exp END + 1)
                                  || ' as this append expects';
                ELSE
                    st[k] := 1;
                    vers[k] := f_max_v;
                    firsts[k] := f_min_p;
                    lasts[k] := f_max_p;
                    n_retry := n_retry + 1;
                END IF;
            ELSIF (exp = -2 AND cur <> 0) OR (exp = -3 AND cur = 0) OR (exp >= 0 AND cur <> exp) THEN
                st[k] := 2;
            ELSE
                st[k] := 0;
            END IF;
            IF st[k] IN (2, 3) THEN
                failed := true;
                EXIT;  -- the first failing part decides the request's error
            END IF;
        END LOOP;

        IF NOT failed AND n_retry > 0 AND n_retry < j - i THEN
            FOR k IN i..j-1 LOOP
                IF st[k] = 1 THEN
                    st[k] := 3;
                    details[k] := 'this part of a multi-stream append was stored before, '
                                  || 'the others were not';
                    EXIT;
                END IF;
            END LOOP;
            failed := true;
        END IF;

        IF failed THEN
            FOR k IN i..j-1 LOOP
                IF st[k] NOT IN (2, 3) THEN
                    st[k] := 4;
                ELSIF st[k] IN (2, 3) THEN
                    -- keep only the first failure; later parts were never checked
                    FOR s IN k+1..j-1 LOOP
                        st[s] := 4;
                    END LOOP;
                    EXIT;
                END IF;
            END LOOP;
        ELSIF n_retry = 0 THEN
            FOR k IN i..j-1 LOOP
                s := starts[k];
                e := s + p_count[k] - 1;
                cur := actuals[k];
                INSERT INTO {schema}.events
                       (position, stream_id, version, event_id, type, schema_version,
                        data, metadata, recorded_at)
                SELECT head + u.ord, p_stream[k], cur + u.ord, u.i, u.t, u.sv, u.d, u.m, recorded
                  FROM unnest(p_ids[s:e], p_types[s:e], p_svs[s:e], p_data[s:e], p_meta[s:e])
                       WITH ORDINALITY AS u(i, t, sv, d, m, ord);
                vers[k] := cur + p_count[k];
                firsts[k] := head + 1;
                lasts[k] := head + p_count[k];
                head := head + p_count[k];
                wrote := true;
            END LOOP;
        END IF;
        i := j;
    END LOOP;

    IF wrote THEN
        PERFORM pg_notify(p_channel, head::text);
    END IF;
    RETURN QUERY
        SELECT st[g.n], vers[g.n], firsts[g.n], lasts[g.n], actuals[g.n], details[g.n]
          FROM generate_series(1, n_parts) AS g(n);
END
$fn$;
