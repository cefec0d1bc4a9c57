from .cli import main

if __name__ == "__main__":  # importing the module (documentation tools) runs nothing
    main()
