"""The local executor stops its workers even when the pool's own terminate blocks forever."""

import time

from purgemix.executors.local import LocalExecutor, stop_pool


def square(x):
    return x * x


def test_results_with_two_workers_and_a_clean_close():
    ex = LocalExecutor(2)
    assert list(ex.imap(square, [((i,), {}) for i in range(20)])) == [i * i for i in range(20)]
    ex.close()


def test_a_pool_whose_terminate_hangs_is_stopped_by_killing_its_workers():
    ex = LocalExecutor(2)
    assert list(ex.imap(square, [((3,), {})])) == [9]
    pool = ex._pool
    workers = list(pool._pool)
    real_terminate = pool.terminate

    def hangs_until_the_workers_die():  # what CPython's Pool.terminate sometimes does
        while any(p.is_alive() for p in workers):
            time.sleep(0.05)
        real_terminate()

    pool.terminate = hangs_until_the_workers_die
    t0 = time.time()
    stop_pool(pool, timeout=1.0)
    assert time.time() - t0 < 8
    assert not any(p.is_alive() for p in workers)
