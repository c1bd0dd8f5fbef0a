#include "cluster.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <mutex>

#include "paro/error.hpp"

#ifdef PARO_HAVE_MPI
#include <mpi.h>
#endif

namespace paro::cli {

namespace {

// The size the launcher gave this job, from its environment (0: not launched by one).
int launched_size() {
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"})
        if (const char* v = std::getenv(var)) return std::atoi(v);
    return 0;
}

#ifdef PARO_HAVE_MPI
constexpr int kBlockTag = 7;
std::mutex send_mutex;  // blocks finish on worker threads; MPI is used by one thread at a time

void check(int status, const char* what) {
    if (status != MPI_SUCCESS) throw std::runtime_error(fmt::format("MPI: {} failed (status {})", what, status));
}
#endif

}  // namespace

Cluster::Cluster() {
    if (launched_size() <= 1) return;
#ifdef PARO_HAVE_MPI
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
    joined_ = true;
    if (provided < MPI_THREAD_SERIALIZED)
        throw InputError("", "mpirun", "this MPI library cannot serve calls from more than one thread");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_free(&local);
#else
    throw InputError("", "mpirun",
                     "this paro was built without MPI: it cannot share work between processes (build with "
                     "libopenmpi-dev installed, cmake -DPARO_WITH_MPI=ON)");
#endif
}

Cluster::~Cluster() {
#ifdef PARO_HAVE_MPI
    if (joined_) MPI_Finalize();
#endif
}

std::vector<int64_t> Cluster::broadcast(std::vector<int64_t> values) const {
#ifdef PARO_HAVE_MPI
    if (size_ > 1) {
        int64_t n = static_cast<int64_t>(values.size());
        check(MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
        values.resize(static_cast<size_t>(n));
        check(MPI_Bcast(values.data(), static_cast<int>(n), MPI_INT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
    }
#endif
    return values;
}

void Cluster::send_block([[maybe_unused]] const HeadBlock& block, [[maybe_unused]] const std::string& bytes) const {
#ifdef PARO_HAVE_MPI
    std::lock_guard<std::mutex> lock(send_mutex);
    const int64_t header[4] = {block.layer, block.h0, block.count, static_cast<int64_t>(bytes.size())};
    check(MPI_Send(header, 4, MPI_INT64_T, 0, kBlockTag, MPI_COMM_WORLD), "MPI_Send");
    check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, 0, kBlockTag + 1, MPI_COMM_WORLD), "MPI_Send");
#endif
}

void Cluster::receive_blocks(
    [[maybe_unused]] int64_t count,
    [[maybe_unused]] const std::function<void(const HeadBlock&, const std::string&)>& on_block) const {
#ifdef PARO_HAVE_MPI
    for (int64_t i = 0; i < count; ++i) {
        int64_t header[4] = {0, 0, 0, 0};
        MPI_Status st;
        check(MPI_Recv(header, 4, MPI_INT64_T, MPI_ANY_SOURCE, kBlockTag, MPI_COMM_WORLD, &st), "MPI_Recv");
        std::string bytes(static_cast<size_t>(header[3]), '\0');
        check(MPI_Recv(bytes.data(), static_cast<int>(header[3]), MPI_BYTE, st.MPI_SOURCE, kBlockTag + 1, MPI_COMM_WORLD,
                       MPI_STATUS_IGNORE),
              "MPI_Recv");
        on_block(HeadBlock{header[0], header[1], header[2]}, bytes);
    }
#endif
}

void Cluster::barrier() const {
#ifdef PARO_HAVE_MPI
    if (size_ > 1) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

void Cluster::abort(int status) const {
#ifdef PARO_HAVE_MPI
    if (joined_) MPI_Abort(MPI_COMM_WORLD, status);
#endif
    std::exit(status);
}

}  // namespace paro::cli
