-- A payment reserves its amount on the invoice, on the primary, in the transaction that
-- enqueues it (issue 10, item 12). Before, the portal read the invoice from a replica and
-- checked it per idempotency key, so two keys (two tabs, two nodes) could each see the
-- full balance open and both charge it.
--
-- The reservation is the pending job itself: an invoice's open amount is
--   amount_cents - paid_cents - (sum of its queued or processing payment jobs)
-- computed under a row lock on the invoice. When the job succeeds, paid_cents grows by
-- the amount in the same statement that ends the job (job_succeed_payment), so the sum
-- moves from "reserved" to "paid" at once; when it fails for good, the reservation
-- ends with it. No new column: the previous release, which enqueues without
-- reserving, keeps working side by side (expand only), and so does its completion.

CREATE INDEX job_pending_payment_invoice_idx ON job ((request->>'invoice'))
  WHERE kind = 'payment' AND status IN ('queued', 'processing');

-- Enqueues a payment of p_amount on p_invoice for p_patient, once per (account, key).
-- outcome: queued (new job) | replayed (this key's job, same request) | key-reused (this
-- key, another request) | not-found (no such invoice of this patient) | not-open (paid
-- or cancelled) | exceeds (more than the open amount; open_cents says how much is open).
CREATE FUNCTION continuum_enqueue_payment(p_patient bigint, p_account bigint, p_key text,
                                          p_invoice bigint, p_amount bigint, p_request jsonb)
RETURNS TABLE (job_id bigint, outcome text, open_cents bigint)
LANGUAGE plpgsql AS $$
DECLARE
  inv invoice%ROWTYPE;
  prior job%ROWTYPE;
  pending bigint;
  new_id bigint;
BEGIN
  -- Serializes every payment of this invoice (and the same key from two nodes).
  SELECT * INTO inv FROM invoice WHERE id = p_invoice AND patient_id = p_patient FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT NULL::bigint, 'not-found'::text, NULL::bigint;
    RETURN;
  END IF;
  SELECT * INTO prior FROM job j
   WHERE j.account_id = p_account AND j.kind = 'payment' AND j.idempotency_key = p_key;
  IF FOUND THEN
    RETURN QUERY SELECT prior.id,
      CASE WHEN prior.request = p_request THEN 'replayed' ELSE 'key-reused' END, NULL::bigint;
    RETURN;
  END IF;
  IF inv.status <> 'issued' THEN
    RETURN QUERY SELECT NULL::bigint, 'not-open'::text, 0::bigint;
    RETURN;
  END IF;
  SELECT COALESCE(sum((j.request->>'amount_cents')::bigint), 0) INTO pending FROM job j
   WHERE j.kind = 'payment' AND j.status IN ('queued', 'processing')
     AND j.request->>'invoice' = p_invoice::text;
  IF inv.paid_cents + pending + p_amount > inv.amount_cents THEN
    RETURN QUERY SELECT NULL::bigint, 'exceeds'::text,
      GREATEST(0, inv.amount_cents - inv.paid_cents - pending);
    RETURN;
  END IF;
  INSERT INTO job (kind, patient_id, account_id, idempotency_key, request)
  VALUES ('payment', p_patient, p_account, p_key, p_request)
  ON CONFLICT (account_id, kind, idempotency_key) DO NOTHING
  RETURNING id INTO new_id;
  IF new_id IS NULL THEN
    -- The same key, enqueued meanwhile by a node of the previous release (no lock).
    SELECT j.id INTO new_id FROM job j
     WHERE j.account_id = p_account AND j.kind = 'payment' AND j.idempotency_key = p_key;
    RETURN QUERY SELECT new_id, 'replayed'::text, NULL::bigint;
    RETURN;
  END IF;
  RETURN QUERY SELECT new_id, 'queued'::text, NULL::bigint;
END
$$;
