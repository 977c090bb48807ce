DROP TABLE IF EXISTS bench_messages;
DROP SEQUENCE IF EXISTS bench_seq;
CREATE SEQUENCE bench_seq;
CREATE TABLE bench_messages (
  id uuid PRIMARY KEY, conversation_id uuid NOT NULL, seq bigint NOT NULL, sender_id uuid NOT NULL,
  kind text NOT NULL, body text, client_msg_id text, created_at timestamptz NOT NULL,
  edited_at timestamptz, deleted_at timestamptz);
CREATE UNIQUE INDEX ON bench_messages (conversation_id, seq);
CREATE UNIQUE INDEX ON bench_messages (sender_id, client_msg_id);
