from bookrec_etl.cli import main

if __name__ == "__main__":  # not when a helper process of extract imports this module
    main(prog_name="bookrec-etl")
