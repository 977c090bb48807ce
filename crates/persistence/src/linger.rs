//! Gathering a batch: a short wait, in yields rather than time, for work already on its way.

use tokio::sync::mpsc;

/// How many times a batch lets the runtime run before it goes out.
const YIELDS: usize = 8;

/// Lets whatever else is ready on the runtime run a few times before a batch goes out, and
/// takes into `batch` (up to `max`) what arrives on `incoming` meanwhile.
///
/// Senders' requests arrive a few microseconds apart, from tasks that are already running or
/// about to. Without this wait the first one or two would go out alone, and each statement's
/// fixed cost in Postgres (planning, executor set-up, a commit, a round trip) would be shared
/// by fewer messages. A yield costs microseconds, where a timer would cost at least a
/// millisecond; on an idle server it finds nothing, and the batch goes out at once.
pub(crate) async fn linger<T>(incoming: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, max: usize) {
    for _ in 0..YIELDS {
        if batch.len() >= max {
            return;
        }
        tokio::task::yield_now().await;
        while batch.len() < max {
            match incoming.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_takes_what_arrives_while_it_lingers_up_to_its_limit() {
        let (send, mut incoming) = mpsc::channel(16);
        let sender = tokio::spawn(async move {
            for i in 0..10 {
                send.send(i).await.unwrap();
            }
        });
        let mut batch = Vec::new();
        linger(&mut incoming, &mut batch, 4).await;
        sender.await.unwrap();
        assert_eq!(
            batch,
            vec![0, 1, 2, 3],
            "in order, and no more than the limit"
        );
        let mut rest = Vec::new();
        linger(&mut incoming, &mut rest, 16).await;
        assert_eq!(rest, (4..10).collect::<Vec<_>>());
    }
}
