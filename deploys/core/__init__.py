"""What every phase shares: the OS guard, controller-side checks, markers, the fact memo, the run harness."""
