# Sourced by the tests/mpi scripts: skip (77) when this build has no MPI plugin or no
# mpirun, else `mpi N CMD...` runs CMD on N ranks of this machine.
. "${top_srcdir:?run through make check}/tests/cli/lib.sh"
[ -e "$top_builddir/manifests/uninstalled/comm/comm-mpi.json" ] ||
    { echo "SKIP: MPI is not built (configure found none: --enable-mpi, libopenmpi-dev)"; exit 77; }
mpirun=${MPIRUN:-mpirun}
command -v "$mpirun" >/dev/null 2>&1 || { echo "SKIP: $mpirun not found (openmpi-bin)"; exit 77; }
# Open MPI refuses root unless told; the tests may run as root in containers.
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
mpi() {
    n=$1
    shift
    "$mpirun" --oversubscribe -np "$n" "$@"
}
