#pragma once
// The processes of one `paro calibrate` started by an MPI launcher (mpirun -n K), or this process
// alone. Rank 0 keeps the checkpoint and writes the output; the other ranks send it their
// finished blocks of heads. MPI is an optional dependency: without it, a launch by mpirun is refused.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "paro/pattern.hpp"

namespace paro::cli {

class Cluster {
public:
    // Joins the launcher's job when the environment shows one (Open MPI, PMI, PMIx), else one process.
    Cluster();
    ~Cluster();
    Cluster(const Cluster&) = delete;
    Cluster& operator=(const Cluster&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    // The rank's place among the ranks of its machine (which GPU it takes).
    int local_rank() const { return local_rank_; }

    // Rank 0's values, on every rank.
    std::vector<int64_t> broadcast(std::vector<int64_t> values) const;
    // A finished block of heads (LayerCheckpoint::encode's bytes) to rank 0; thread-safe.
    void send_block(const HeadBlock& block, const std::string& bytes) const;
    // On rank 0: `count` blocks from the other ranks, each handed to on_block as it comes.
    void receive_blocks(int64_t count,
                        const std::function<void(const HeadBlock& block, const std::string& bytes)>& on_block) const;
    // Every rank waits for the others.
    void barrier() const;
    // Ends every rank with this status (an error on one rank would leave the others waiting).
    [[noreturn]] void abort(int status) const;

private:
    int rank_ = 0, size_ = 1, local_rank_ = 0;
    bool joined_ = false;
};

}  // namespace paro::cli
